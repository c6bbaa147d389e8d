"""Helpers shared by the tests (no tests here): ``datasets`` (tiny datasets in every layout), ``runtime``
(frames, clips, stream servers), ``bundles`` (the one tiny-bundle builder, on the real converter), ``serve`` (a real
`fer-edge serve` in a subprocess, HTTP and SSE), ``home`` (the user's real home and cache, to prove tests leave them
alone)."""
