"""Built-in vendor plugins, one package each.

They are registered through the ``ttcs.plugins`` entry-point group exactly like third-party
plugins, so the path a vendor takes is the path the project tests every day.
"""
