"""The crasher: SIGKILLs the stack's processes under load while publishing and indexing, then checks it."""
