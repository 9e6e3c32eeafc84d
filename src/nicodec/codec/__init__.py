"""The codec proper: images in, .nic bytes out, and back."""
