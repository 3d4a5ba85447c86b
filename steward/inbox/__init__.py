"""The approval inbox: a small web page listing what waits for a person, to decide it there.

`app` builds the Starlette app (pages, decisions); `auth` signs people in by one-time link
and keeps their session; `forms` turns a call's arguments into form fields and back;
`waiting` finds what waits across runs. `steward inbox` serves it (`steward.cli.inbox`).
Only `auth` is light enough to import from the CLI at startup; the rest pull in the web
stack and are imported when the inbox runs.
"""
