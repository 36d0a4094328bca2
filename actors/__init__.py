"""Ray actors: thin shells over the plain-Python cores in ``spark_ray``.

Installed as ``spark_ray.actors``. Each actor owns one core object, its I/O and its mailbox.
"""

from spark_ray.actors.naming import actor_name, get_or_create

__all__ = ["actor_name", "get_or_create"]
