"""`pulumi up -s STACK`: the stand of the current stack, read from stacks/Pulumi.<stack>.yaml."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script: put the repository (the `infra` package) first on the
# path, and drop this directory so its modules cannot shadow top-level packages.
_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
sys.path[:] = [str(_REPO)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import pulumi  # noqa: E402

from infra.cloud.program import build  # noqa: E402
from infra.cloud.secret_refs import PulumiSecrets  # noqa: E402
from infra.cloud.settings import CloudSettings  # noqa: E402
from infra.config import load_stand  # noqa: E402

stand = load_stand(pulumi.get_stack())
for name, value in build(stand, PulumiSecrets(), CloudSettings.from_config()).items():
    pulumi.export(name, value)
