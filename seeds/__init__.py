"""Fake data for the demo and for trying the admin site by hand.

`python -m seeds [--delete] [--yes]` does the same as `lomaya seed`; the work is in `seeds.fill`
(`fill`, `wipe`), the generated pictures in `seeds.pictures`, the Russian names and titles in
`seeds.data`.
"""
