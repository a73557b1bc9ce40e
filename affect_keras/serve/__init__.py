"""The prediction service: an HTTP API and a web page over the light runtime (`affect-serve`).

`config.ServeConfig` holds its settings, `workers.Workers` the loaded analysers behind a bounded queue,
`inputs` turns request bodies into images and options, `app.create_app` is the FastAPI application, and
`static/` the page it serves at `/`. Imports no keras (`pip install 'affect-keras[serve]'`)."""
