"""Building an object from a gin config string in a test, leaving gin's global config clean."""

import gin


def build_from_gin(configurable_name, config):
    """Calls gin's configurable `configurable_name` with the bindings in `config` (a gin string)."""
    with gin.unlock_config():
        gin.clear_config()
        gin.parse_config(config)
        try:
            return gin.get_configurable(configurable_name)()
        finally:
            gin.clear_config()
