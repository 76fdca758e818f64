"""The team server: scheduled assessments of many units, history, findings lifecycle, dashboard.

`assay serve` runs `scanner.server.app.create_app` under uvicorn; `assay worker` runs the same
scan jobs as Celery tasks on a unit's queue (`scanner.server.jobs`).
"""
