"""Face Privacy Guard Celery worker; built on top of blurcore by the service issue."""
