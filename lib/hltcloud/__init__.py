"""hltcloud: lend the ALICE HLT farm to an OpenStack cloud and take it back."""
__version__ = "0.1.0"
