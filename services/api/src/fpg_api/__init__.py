"""Face Privacy Guard HTTP gateway; built on top of blurcore by the service issue."""
