"""Refresh the checked-in template from a synthesized one: what ``make synth`` runs after the CDK.

``python -m fanwatch.standin.refresh cloud-stack/cdk.out/fanwatch-cloud.template.json`` writes
:data:`fanwatch.standin.template.TEMPLATE`, normalised (:func:`~fanwatch.standin.template.normalized`)
so that it changes only when the stack does, not with every edit of the handlers' code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fanwatch.standin.template import TEMPLATE, load_template, normalized

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m fanwatch.standin.refresh SYNTHESIZED [--out FILE]``: write the normalised template, by
    default over the checked-in copy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("synthesized", type=Path, help="cdk.out/<stack>.template.json")
    parser.add_argument("--out", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    template = normalized(load_template(args.synthesized))
    args.out.write_text(json.dumps(template, indent=1, sort_keys=True) + "\n")
    print(f"checked-in template refreshed: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
