"""The local core's Greengrass IPC server: what awsiotsdk's ``GreengrassCoreIPCClientV2`` talks to.

``IPCServer(nucleus, socket_path)`` serves PublishToIoTCore, SubscribeToIoTCore, PublishToTopic,
SubscribeToTopic, GetConfiguration, UpdateConfiguration, SubscribeToConfigurationUpdate, UpdateState,
GetComponentDetails and ListComponents, authorized from each component's ``accessControl``.
"""

from fanwatch.core.ipc.server import DEFAULT_MAX_FRAME_BYTES, MAX_SOCKET_PATH_BYTES, IPCServer

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "MAX_SOCKET_PATH_BYTES", "IPCServer"]
