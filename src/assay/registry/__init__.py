"""The model registry: named models of each organisation, their immutable versions and
movable aliases, the content-addressed artifact store and its integrity checks, trusted
publisher keys, version health, and the versions loaded in this process. Other packages
use it through `service` (`ModelRegistry`), `deps`, `schemas` (`VersionRef`, the views),
`errors` and `models` (the tables). It imports `core`, `engine`, `settings`,
`audit.service`, `auth.deps` (route permissions) and `http` (rate and upload limits);
its CLI also `cli_support` and `orgs.models`. It never imports
`predictions`, `oip` or `system`: they subscribe to its change notices instead."""
