"""Dashboards, provisioning and alert rules, shipped inside the package as data.

Installed as ``spark_ray.grafana`` so ``spark-ray observe up`` finds its rules on a cluster node
that installed the wheel; this file exists only to make the folder a package.
"""
