"""The test suite; a package so that every test module has a unique, rootdir-relative name
(``tests.rpc.test_server``, ``tests.test_serve``) and the helpers import as ``tests.helpers``."""
