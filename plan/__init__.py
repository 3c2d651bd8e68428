"""The offline plan: what a stack would create, computed with no cloud, CLI or credentials.

`recorder` runs the Pulumi program under mocks; `document` reduces the recording to a
sorted JSON plan; `tree`, `graph` and `diff` render it for people; `__main__` is the
command (`python -m plan --stack dev`, `make plan STACK=dev`).
"""
