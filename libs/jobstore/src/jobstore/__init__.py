"""What the gateway and the workers share: settings, blob store, job records and Celery wiring.

Neither service imports the other; both speak through the Redis layout defined here.
"""
