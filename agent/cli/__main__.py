"""Run the ``lastmile`` command line as ``python -m agent.cli``."""

from agent.cli import main

if __name__ == "__main__":
    main()
