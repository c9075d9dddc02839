"""What root runs on a hypervisor: the sh scripts (the .sh files here, read by scripts.py), every
byte of them in one place."""
