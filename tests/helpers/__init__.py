"""Helpers shared by the tests (no tests here): ``datasets`` (tiny datasets in every layout), ``runtime``
(tiny bundles, frames, clips, stream servers), ``home`` (the user's real home and cache, to prove tests leave
them alone)."""
