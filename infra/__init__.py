"""agent-platform: the Pulumi program that provisions AWS and deploys the agent service.

`infra.stack.build()` is the program; `python -m infra render` runs it offline under mocks.
"""
