"""The Pulumi program: validated config -> components -> stack outputs (see infra/stack.py)."""

import pulumi

from infra.stack import build

for name, value in build().items():
    pulumi.export(name, value)
