"""Run the ``lastmile`` command line as ``python -m agent.interfaces.cli``."""

from agent.interfaces.cli import main

if __name__ == "__main__":
    main()
