"""HTTP service and web page for transmission (`nicodec serve`)."""
