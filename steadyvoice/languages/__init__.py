"""Languages: what each voice speaks, what language a text is in, and refusing the mismatch.

``voices`` (the languages of a voice or voice profile), ``codes`` (language codes and names),
``scripts`` (Unicode scripts of the letters), ``identify`` (py3langid, for scripts several
languages share), ``stopwords`` (function words), ``detect`` (a text's script and language) and
``refusal`` (``text_language_unsupported``).
"""
