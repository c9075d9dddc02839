"""What root runs on a hypervisor: the sh scripts (scripts.py), every byte of them in one place."""
