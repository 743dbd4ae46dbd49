"""Prompt-injection heuristics: phrasings that try to override the instructions a model was
given, extract its system prompt, spoof a chat role, or switch it into a "jailbreak" persona.

Four detectors, one per family, category "injection":

* ``injection.ignore_instructions``: "ignore all previous instructions", "disregard your
  rules", "forget everything above"; also in German, French, Spanish, Italian, Portuguese
  and Dutch.
* ``injection.reveal_system_prompt``: "reveal your system prompt", "print the text above",
  "what were your original instructions".
* ``injection.role_spoofing``: chat-template markers in user text (``<|im_start|>system``,
  ``[INST]``, ``<<SYS>>``, ``### System:``, ``<system>``, a blank line then ``Human:`` or
  ``Assistant:``, ``{"role": "system"``).
* ``injection.jailbreak_persona``: "you are now DAN", "do anything now", "developer mode
  enabled", "pretend you have no restrictions".

These are heuristics for known phrasings, tuned for few false alarms on ordinary requests
("ignore the typo in my previous message" does not count). They do not understand
paraphrases, other languages, encodings (base64, leetspeak, homoglyphs) or instructions
hidden in documents and tool output: docs/guardrails.md, "What heuristics can and cannot
catch". Each family is tried only where one of its first words occurs (anchors), which
keeps it at a few microseconds on an ordinary prompt.
"""

from __future__ import annotations

import regex

from aigateway.guardrails.patterns import PatternDetector

_QUALIFIER = (
    r"(?:previous|prior|above|earlier|preceding|former|foregoing|initial|original|old|"
    r"existing|system|all|your)"
)
_FILLER = r"(?:all|the|your|of|these|those|my|its|and|other|any|every|current)"
_NOUN = (
    r"(?:instructions?|prompts?|directives?|rules|guidelines|guidance|commands?|orders|"
    r"constraints|restrictions|guardrails|programming|training|polic(?:y|ies)|"
    r"(?:safety|content)\s+(?:guidelines|rules|polic(?:y|ies)|filters))"
)

_FR_NOUN = r"(?:instructions|consignes|directives|règles|ordres)"
_ES_NOUN = (  # and Italian, Portuguese
    r"(?:instrucciones|indicaciones|órdenes|reglas|directrices|istruzioni|regole|instruções|"
    r"regras)"
)

_IGNORE = (
    # English: a verb, a qualifier (previous, above, your, all …), an instruction noun.
    r"\b(?:ignore|disregard|forget|skip|bypass|override|abandon|discard|neglect)\s+"
    rf"(?:{_FILLER}\s+){{0,3}}?{_QUALIFIER}\s+"
    rf"(?:{_FILLER}\s+|{_QUALIFIER}\s+){{0,2}}?{_NOUN}\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:all\s+(?:of\s+)?)?(?:the\s+|that\s+)?"
    r"(?:above|preceding|foregoing)(?=\s*(?:[.,;:!\n]|and\b|$))"
    r"|\bforget\s+(?:about\s+)?(?:everything|all(?:\s+of\s+it)?|what)\s+(?:above|before|"
    r"you\s+(?:were|have\s+been)\s+(?:told|given)|(?:i|we)\s+(?:said|told\s+you)\s+before)\b"
    rf"|\b(?:do\s+not|don't|stop)\s+(?:follow(?:ing)?|obey(?:ing)?)\s+"
    rf"(?:{_FILLER}\s+){{0,2}}?(?:previous|prior|above|earlier|original|initial|system|your)"
    rf"\s+{_NOUN}\b"
    # German
    r"|\b(?:ignorier(?:e|en|t)?|vergiss|vergessen|missachte(?:n)?|übergehe)\s+(?:sie\s+)?"
    r"(?:\w+\s+){0,2}?(?:vorherigen|vorigen|bisherigen|obigen|vorangegangenen|früheren|alle|"
    r"deine|deinen|ihre)\s+(?:\w+\s+){0,2}?"
    r"(?:anweisungen|instruktionen|befehle|regeln|vorgaben|richtlinien)\b"
    # French: "toutes les", "tes"/"vos", or a qualifier after the noun
    r"|\b(?:ignore[rsz]?|oublie[rsz]?|ne tiens pas compte|ne tenez pas compte)\s+"
    rf"(?:de\s+|d')?(?:(?:toutes?|tous)\s+(?:les|tes|vos|ces)\s+{_FR_NOUN}"
    rf"|(?:tes|vos)\s+{_FR_NOUN}|(?:les|ces|des)\s+{_FR_NOUN}\s+"
    r"(?:précédentes|antérieures|ci-dessus|initiales|du\s+système))"
    # Spanish, Italian, Portuguese: likewise
    r"|\b(?:ignora|ignore|ignorar|olvida|olvide|omite|descarta|haz\s+caso\s+omiso\s+de|"
    r"dimentica|esqueça|esquece)\s+(?:(?:todas?|todos|tutte)\s+(?:las|los|le|as|tus|sus)\s+"
    rf"{_ES_NOUN}|(?:tus|sus|suas|tuas|le\s+tue)\s+{_ES_NOUN}|(?:las|los|le|as)\s+{_ES_NOUN}\s+"
    r"(?:anteriores|previas|previos|precedenti|del\s+sistema|di\s+sistema|iniciales|iniziali))"
    # Dutch
    r"|\b(?:negeer|vergeet)\s+(?:alle\s+(?:de\s+|je\s+)?(?:(?:vorige|eerdere|voorgaande)\s+)?"
    r"|(?:de\s+|je\s+)?(?:vorige|eerdere|voorgaande)\s+)(?:instructies|regels|opdrachten)\b"
)

_ADJECTIVE = r"(?:exact|full|entire|complete|original|initial|hidden|secret|verbatim|current|first)"
# No variable-width lookbehind in these patterns: the regex module's partial matching (stream
# scanning) reports a partial match wherever one is tried, so nothing would ever leave.
_REVEAL = (
    r"\b(?:reveal|show|print|display|output|repeat|recite|leak|dump|expose|disclose|give|tell|"
    r"share|send|paste|copy|write\s+out|spell\s+out|list|echo)\s+(?:me\s+|us\s+)?"
    rf"(?:your\s+(?:{_ADJECTIVE}\s+){{0,2}}?(?:instructions|prompt|directives|programming)"
    rf"|(?:(?:your|the|its|all|of|{_ADJECTIVE})\s+){{0,4}}?"
    r"(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|"
    r"internal|developer|pre-?)\s*(?:prompt|instructions)|(?:instructions|prompt|rules)\s+"
    r"(?:you\s+were\s+given|given\s+to\s+you|you\s+received)))\b"
    r"|\b(?:repeat|print|output|show|reveal|echo|recite|copy|write|display|return)\s+"
    r"(?:back\s+)?(?:me\s+)?(?:(?:all|of|the|every)\s+){0,3}?"
    r"(?:text|words|content|lines|message|instructions|characters|tokens|everything)\s+"
    r"(?:above|before\s+(?:this|my\s+message)|preceding|prior\s+to\s+this|so\s+far|"
    r"from\s+the\s+(?:start|beginning))"
    # "the text above the chart" is about a layout, "the text above this line" is not
    r"(?!\s+(?:the|a|an|each|it|that)\b|\s+this\s+(?!line|message|point|sentence)\w)"
    r"|\bwhat\s+(?:were|are|was|is)\s+your\s+(?:original\s+|initial\s+|exact\s+|first\s+|"
    r"hidden\s+)?(?:instructions|system\s+prompt|prompt)\b"
    r"|\b(?:zeig(?:e)?|gib|nenne|montre|affiche|révèle|donne|muestra|muéstrame|revela|dime|"
    r"mostra|rivela)(?:-moi)?\s+(?:mir\s+|me\s+)?"
    r"(?:deinen|den|ihren|ton|le|votre|tu|el|su|il)\s+"
    r"(?:system-?prompt|prompt\s+(?:système|systeme|del\s+sistema|di\s+sistema))\b"
)

_ROLE = (
    r"<\|im_start\|>|<\|im_end\|>"
    r"|<\|(?:system|assistant|user|endoftext|eot_id|start_header_id|end_header_id|"
    r"begin_of_text)\|>"
    r"|\[/?INST\]|<</?SYS>>"
    r"|(?:\A|\n)[ \t]*\#{1,4}[ \t]*(?:system|instruction|assistant|human|response)[ \t]*:"
    r"|</?(?:system|system_prompt|sys_prompt)>"
    r"|\n[ \t]*\n[ \t]*(?-i:Human|Assistant|System)[ \t]*:"
    r"|\{\s*[\"']role[\"']\s*:\s*[\"'](?:system|developer|assistant)[\"']"
    r"|\b(?:system|admin|developer)\s+override\s*:"
)

_PERSONA = (
    r"\byou\s+are\s+(?:now\s+|going\s+to\s+be\s+|about\s+to\s+(?:become|be)\s+)?"
    r"(?:(?-i:DAN|STAN|DUDE|AIM)\b|mongo\s+tom\b|an?\s+(?:unrestricted|unfiltered|uncensored|"
    r"jailbroken|unaligned|amoral|rogue)\s+(?:ai|assistant|model|chatbot|language\s+model|"
    r"version)\b)"
    r"|\b(?:act|behave|respond|answer|pretend|roleplay)\s+(?:as|like)\s+(?:an?\s+)?"
    r"(?:(?-i:DAN|STAN|DUDE)\b|(?:unrestricted|unfiltered|uncensored|jailbroken|amoral)\s+"
    r"(?:ai|assistant|model|chatbot|version)\b)"
    r"|\bdo\s+anything\s+now\b"
    r"|\b(?:(?-i:DAN|STAN)|jailbreak|unrestricted|unfiltered)\s+mode\b"
    r"|\bdeveloper\s+mode\s+(?:enabled|activated|output|response)\b"
    r"|\b(?:chatgpt|claude|gemini|llama|you)\s+(?:with|in)\s+developer\s+mode\b"
    r"|\bsimulate\s+developer\s+mode\b"
    r"|\bpretend\s+(?:that\s+)?(?:you\s+)?(?:have|are|had|were)\s+(?:no|free\s+(?:of|from)|"
    r"without|not\s+bound\s+by)\s+(?:any\s+)?(?:restrictions|limitations|limits|rules|filters|"
    r"guidelines|ethics|morals|content\s+polic(?:y|ies))\b"
    r"|\byou\s+(?:have|had|now\s+have)\s+no\s+(?:restrictions|limitations|filters|rules|"
    r"guidelines|ethical\s+guidelines|content\s+polic(?:y|ies))\b"
    r"|\byou\s+are\s+(?:no\s+longer\s+bound\s+by|free\s+(?:of|from))\s+"
    r"(?:(?:any|all|your|the)\s+)?"
    r"(?:rules|restrictions|guidelines|polic(?:y|ies)|openai|anthropic|limitations)\b"
    r"|\b(?:freed|broken\s+free)\s+(?:from|of)\s+the\s+typical\s+confines\s+of\s+ai\b"
    r"|\bjailbr(?:oken|eak)\s+(?:ai|assistant|model|chatbot|version)\b"
)

# Lower-case literals every match of a family starts with (or the start of the text): the
# pattern is tried only there (patterns.PatternDetector). test_injection.py checks that this
# finds exactly what trying every position finds.
_ANCHORS: dict[str, tuple[str, ...]] = {
    "ignore_instructions": (
        "ignor", "disregard", "forget", "skip", "bypass", "override", "abandon", "discard",
        "neglect", "do", "stop", "vergiss", "vergessen", "missacht", "übergeh", "oubli",
        "ne tiens", "ne tenez", "olvid", "omite", "descarta", "haz", "dimentica", "esque",
        "negeer", "vergeet",
    ),
    "reveal_system_prompt": (
        "reveal", "show", "print", "display", "output", "repeat", "recite", "leak", "dump",
        "expose", "disclose", "give", "tell", "share", "send", "paste", "copy", "write",
        "spell", "list", "echo", "return", "what", "zeig", "gib", "nenne", "montre", "affiche",
        "révèle", "donne", "muestra", "muéstrame", "revela", "dime", "mostra", "rivela",
    ),
    "role_spoofing": (
        "<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "\n", "<system", "</system",
        "<sys_prompt", "</sys_prompt", "{", "system", "admin", "developer",
    ),
    "jailbreak_persona": (
        "you", "act", "behave", "respond", "answer", "pretend", "roleplay", "do", "dan",
        "stan", "jailbr", "unrestricted", "unfiltered", "developer", "chatgpt", "claude",
        "gemini", "llama", "simulate", "freed", "broken",
    ),
}  # fmt: skip

_FAMILIES = (
    ("ignore_instructions", _IGNORE, 160),
    ("reveal_system_prompt", _REVEAL, 160),
    ("role_spoofing", _ROLE, 64),
    ("jailbreak_persona", _PERSONA, 120),
)

INJECTION_DETECTORS: tuple[PatternDetector, ...] = tuple(
    PatternDetector(
        f"injection.{name}",
        "injection",
        pattern,
        flags=regex.IGNORECASE,
        max_match_len=length,
        anchors=_ANCHORS[name],
        priority=80 + index,
    )
    for index, (name, pattern, length) in enumerate(_FAMILIES)
)
