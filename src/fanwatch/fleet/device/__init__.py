"""The device side of a fleet: what a Greengrass core does with the Greengrass service, for local cores."""

from fanwatch.fleet.device.agent import AgentClients, DeviceAgent

__all__ = ["AgentClients", "DeviceAgent"]
