"""Text generation backends behind one interface (see :mod:`lib_tagger.generate.base`)."""
