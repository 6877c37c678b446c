def test_x(pytestconfig):
    for name, p in pytestconfig.pluginmanager.list_name_plugin():
        if "conftest" in str(name): print(name, getattr(p, "__file__", None))
