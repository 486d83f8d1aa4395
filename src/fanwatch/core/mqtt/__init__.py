"""The local core's road to "AWS IoT Core": the spooler, the MQTT link and the local brokers.

* :class:`MqttIoTCoreLink` implements :class:`~fanwatch.core.ports.IoTCoreLink`: one awscrt MQTT
  connection per core (client id = thing name, mTLS where the broker asks for it) behind a
  :class:`Spooler` that behaves like the nucleus' ``mqtt.spooler`` (Memory or Disk).
* :class:`AmqttBroker` (pure Python, the default) and :class:`MosquittoBroker` (mTLS and a per-thing
  ACL) stand in for IoT Core as child processes that can be stopped and started again.
"""

from fanwatch.core.mqtt.amqtt_broker import AmqttBroker
from fanwatch.core.mqtt.broker import BrokerError, LocalBroker, Observer
from fanwatch.core.mqtt.endpoint import BrokerEndpoint, KeyPair, Login
from fanwatch.core.mqtt.link import MqttIoTCoreLink, SubscriptionRefusedError
from fanwatch.core.mqtt.mosquitto_broker import MosquittoBroker
from fanwatch.core.mqtt.spooler import OnFull, Spooler, SpoolerConfig, StorageType
from fanwatch.core.mqtt.topics import MqttRequestError

__all__ = [
    "AmqttBroker",
    "BrokerEndpoint",
    "BrokerError",
    "KeyPair",
    "LocalBroker",
    "Login",
    "MosquittoBroker",
    "MqttIoTCoreLink",
    "MqttRequestError",
    "Observer",
    "OnFull",
    "Spooler",
    "SpoolerConfig",
    "StorageType",
    "SubscriptionRefusedError",
]
