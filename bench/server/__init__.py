"""The parts of ``bench/server_load.py``: server processes, load generators and the report.

Imported as ``server.<module>`` with ``bench/`` on ``sys.path`` (the script's directory).
"""
