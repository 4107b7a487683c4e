"""The store contract suite behind :class:`spindle.testing.StoreContract`.

Imported only when a test asks for ``StoreContract``: pytest loads
:mod:`spindle.testing` in every session, this package (and hypothesis) only
where a store is tested.
"""
