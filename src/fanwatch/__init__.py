"""fanwatch: watch fans on a fleet of Raspberry Pis with AWS IoT Greengrass v2."""

__version__ = "0.1.0"
