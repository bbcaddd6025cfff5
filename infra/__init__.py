"""llm-stands: self-hosted LLM stands as code (config model, sizing, cost, Pulumi, Ansible driver)."""

PROJECT = "llm-stands"
