"""The tools' activities: what a worker runs when a cleared call reaches it.

Which tools exist, their arguments and defaults are in the catalogue (`steward.tools`);
each activity here is a method named after its tool, on the provider object the
catalogue's entry names.
"""
