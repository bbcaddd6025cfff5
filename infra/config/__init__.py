"""The stand model: one typed configuration per stack, read by Pulumi, Ansible and the driver."""

from infra.config.errors import Problem, StandConfigError
from infra.config.loader import load_stand, stack_path
from infra.config.model import Stand

__all__ = ["Problem", "Stand", "StandConfigError", "load_stand", "stack_path"]
