"""The driver: brings stands up and down, runs playbooks, reports progress."""
