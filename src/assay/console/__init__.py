"""The web console: the React application built from `frontend/` into `static/`, served
at `/console/` from inside the installed package (see `assay.console.serving`)."""
