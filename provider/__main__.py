"""Entry point of the source-based plugin: hosts the components of `cloudrun_tasks`."""

from cloudrun_tasks.provider import main

if __name__ == "__main__":
    main()
