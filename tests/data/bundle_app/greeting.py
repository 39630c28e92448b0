"""The test app's own module."""


def hello(name):
    return f"hello, {name}"
