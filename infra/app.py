#!/usr/bin/env python3
"""CDK app entry point. `make synth` runs it directly (no AWS account, no credentials, no cdk
CLI needed): the template lands in infra/cdk.out/flowers.template.json. `make deploy` runs it
through the cdk CLI (infra/package.json), which also builds and pushes the training image."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flowers_infra.build import build  # noqa: E402


def main() -> None:
    # The cdk CLI sets CDK_OUTDIR; a plain run writes next to this file.
    outdir = os.environ.get("CDK_OUTDIR") or str(Path(__file__).resolve().parent / "cdk.out")
    app, _stack = build(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
