# pegasus.py - the text side of the T5 PEGASUS recipe, shared by prepare.py (here) and train.py
# (on the accelerator machine): sentence splitting, character-level LCS / ROUGE-L, the greedy
# pseudo-summary selection, and the lead baseline. Pure Python, no dependencies.
# Not a tokenizer and not a general ROUGE package: ROUGE-L here is the character-level F1 of the
# longest common subsequence, whitespace ignored, which is how Chinese summaries are usually scored.
import re

_SPLIT = re.compile(r"[^。！？\n]*(?:[。！？]+[”’」』）)]*|\n|$)")


def split_sentences(text):
    """Sentences of a document: cut after 。！？ (with any closing quotes) and at line breaks;
    each sentence stripped, empty ones dropped."""
    out = []
    for m in _SPLIT.finditer(text):
        s = m.group(0).strip()
        if s:
            out.append(s)
    return out


def _ascii_word(ch):
    return ch.isascii() and (ch.isalnum() or ch in "-_.,;:)(\"'/")


def join_sentences(sents):
    """Joins sentences as the document had them, without line breaks: a space only between two
    ASCII words (a man page's wrapped English), nothing between Chinese sentences."""
    out = ""
    for s in sents:
        if out and _ascii_word(out[-1]) and _ascii_word(s[0]):
            out += " "
        out += s
    return out


def lcs_len(a, b):
    """Length of the longest common subsequence of strings a and b (bit-parallel, Allison-Dix /
    Hyyro: one big-int step per character of the shorter string)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    s = full
    for ch in b:
        m = masks.get(ch)
        if m:
            u = s & m
            s = ((s + u) | (s - u)) & full
    return len(a) - s.bit_count()


def _chars(text):
    return "".join(text.split())


def rouge_l(candidate, reference):
    """Character-level ROUGE-L F1 (whitespace ignored), 0 when either side is empty."""
    c, r = _chars(candidate), _chars(reference)
    if not c or not r:
        return 0.0
    return 2.0 * lcs_len(c, r) / (len(c) + len(r))


def pseudo_summary(sents, rate=0.25):
    """PEGASUS gap-sentence selection with ROUGE-L, as T5 PEGASUS did it: repeatedly move into the
    summary the sentence whose move most increases the LCS similarity between the summary and the
    remaining text, until the summary holds at least `rate` of the document's characters (or one
    sentence is left). Returns (source, summary) lists of sentences, both in document order."""
    total = sum(len(s) for s in sents)
    src, tgt = list(range(len(sents))), []
    while len(src) > 1:
        best, best_i = -1.0, None
        for i in src:
            ns = join_sentences([sents[j] for j in src if j != i])
            nt = join_sentences([sents[j] for j in sorted(tgt + [i])])
            f = rouge_l(nt, ns)
            if f > best:
                best, best_i = f, i
        src.remove(best_i)
        tgt = sorted(tgt + [best_i])
        if sum(len(sents[j]) for j in tgt) >= rate * total:
            break
    return [sents[j] for j in src], [sents[j] for j in tgt]


def lead(source_text, n_chars):
    """The lead baseline: the first sentence(s) of the text, cut to n_chars characters
    (whitespace not counted), i.e. the same length as the reference summary."""
    out, n = [], 0
    for s in split_sentences(source_text):
        out.append(s)
        n += len(_chars(s))
        if n >= n_chars:
            break
    text = join_sentences(out)
    keep, k = [], 0
    for ch in text:
        if k >= n_chars:
            break
        keep.append(ch)
        if not ch.isspace():
            k += 1
    return "".join(keep)
