"""The REST routers, mounted under /api by ``app.main``."""

# An ``after=`` cursor is compared with event seqs, 64-bit integers in the database.
MAX_SEQ = 2**63 - 1
