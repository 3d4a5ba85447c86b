"""Composition roots: read settings once, build clients and activities, run Temporal workers.

Nothing here decides anything; it only wires. The default worker runs the workflows and
model calls; the privileged worker runs the tools marked privileged, and is the only
process that needs their credentials.
"""
