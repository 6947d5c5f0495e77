"""Word lists and patterns of the deterministic conversation experts (`conversation_critics`).

Kept apart so the lexicons can grow (languages, abuse terms, PII formats) without
touching the experts' logic.

Decisions:
- Function words per language feed the sentence-level language check; a word that is
  English and also another language's ("a", "no", "on", "son") counts for neither.
- The toxicity lexicon holds profanity, slurs and insults or threats aimed at the listener;
  mild interjections between friends ("shut up, really?") are not in it.
- PII patterns: email, US phone, SSN, card numbers, street addresses.
"""

from __future__ import annotations

import re

_STOP_TEXT = (
    "a an the and or but if so of to in on at for from by with about as into than then "
    "i me my mine we our you your he him his she her they them their it its this that these "
    "those is am are was were be been being do does did have has had will would can could "
    "should may might must just very really too also not no yes oh well what who how when "
    "where why which there here all some any more most much many one out up down over now "
    "get got go going like know think want lot im i'm it's that's don't"
)
# function words per language (sentence-level language check); English homographs such as
# "son", "die", "was", "come", "sin" or "a" are left out of the other languages' lists
_FUNCTION_TEXT = {
    "en": "the a an and or but of to in on at for with from by about is are was were be been it "
    "this that i you he she we they my your his her our their me him them not do does did "
    "have has had will would can could there here what who how when where why which so if "
    "just very really too also yes no",
    "es": "el la los las un una unos unas de del y o que en es está están estoy estás soy eres "
    "muy pero por para con si sé mi mis tu tus su sus yo tú él ella nosotros usted "
    "ustedes qué cómo cuándo dónde porque cuando también gracias hola sí se le lo nos te "
    "mucho mucha bueno todo esta este eso esto ya hay tengo tiene voy va vamos fue era al "
    "ayer siempre nunca verdad",
    "fr": "le la les un une des du de et ou que qui est sont suis être avec pour pas ne je tu "
    "il elle nous vous ils elles mon ma mes ton ta tes sa ses leur si l' d' j' c' qu' n' "
    "s' m' t' très mais dans sur au aux ce cette c'est j'ai merci bonjour salut oui non "
    "aussi y à bien tout fait ai va vais on beaucoup toujours",
    "de": "der das den dem des ein eine einen und oder ist sind bin bist nicht mit auf für von "
    "zu auch sehr danke hallo ich du er sie wir ihr es mein meine dein aber wie wo warum "
    "wenn dass noch schon hier heute ja nein",
    "it": "il lo gli un una di del della che è sono sei non con per ma molto anche io lui lei "
    "noi voi mio mia ciao grazie perché quando sì questo questa",
    "pt": "os um uma do da dos das que é são está estou não com para por mas muito também eu "
    "você ele ela nós meu minha obrigado obrigada olá sim como quando porque",
}
STOP = frozenset(_STOP_TEXT.split())
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German",
                  "it": "Italian", "pt": "Portuguese"}  # fmt: skip
_RAW_FUNCTION = {lang: frozenset(text.split()) for lang, text in _FUNCTION_TEXT.items()}
_FOREIGN_RAW = frozenset().union(*(v for k, v in _RAW_FUNCTION.items() if k != "en"))
# a word of English and of another language ("a", "no", "on") is evidence for neither
FUNCTION_WORDS = {
    lang: fw - _FOREIGN_RAW if lang == "en" else fw - _RAW_FUNCTION["en"] - STOP
    for lang, fw in _RAW_FUNCTION.items()
}
PLACEHOLDERS = [
    r"\[[^\]\n]{1,40}\]", r"\{[^}\n]{1,40}\}", r"<[^>\n]{1,40}>", r"_{3,}", r"\bX{3,}\b",
    r"\b(?:user|speaker|persona|person)\s*(?:[12]|[ab]\b)", r"lorem ipsum",
    r"\binsert (?:your|the|a) ", r"\byour name here\b",
    r"\((?:your |their |my )?(?:name|city|company|age|address|job|occupation)\)",
]  # fmt: skip
TOXIC = re.compile(  # profanity, slurs and insults or threats aimed at the listener
    r"\b(?:fuck\w*|shit\w*|bitch\w*|bastard|asshole|cunt|whore|slut|retard\w*|faggot|"
    r"dickhead|dumbass|jackass|nigger\w*|kike|spic|chink|tranny|"
    r"kill yourself|i(?:'ll| will| am going to|'m going to) (?:kill|hurt|beat) you|go to hell|"
    r"screw you|piss off|shut the \w+ up|you (?:stupid|dumb|worthless|ugly|fat) \w+|"
    r"you(?:'re| are) (?:an? )?(?:idiot|moron|loser|pathetic|worthless))\b",
    re.IGNORECASE,
)
PII = {
    "an email address": r"\b[\w.+-]+@[\w-]+\.[\w.]+\b",
    "a phone number": r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b",
    "a social security number": r"\b\d{3}-\d{2}-\d{4}\b",
    "a card number": r"\b(?:\d[ -]?){13,16}\b",
    "a street address": r"\b\d{2,5}\s+[A-Z][a-z]+(?:\s[A-Z][a-z]+)?\s+"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd)\b",
}
# phrases of our own prompts and critic feedback that the embedded model pasted into turns
PROMPT_ECHO = re.compile(  # our prompts' and the critics' feedback wording, pasted into a turn
    r"things \w+ can mention|could mention one of|background only|reveals \d+ of their facts|work in e\.g\.|"
    r"stay in character|reply with json|an earlier draft|^\W*\w+ said:|about you \(|"
    r"claims one of \w+'s facts|addresses themself|introduces themself|say something new|"
    r"paraphrase it|write only speech|do not recite",
    re.IGNORECASE | re.MULTILINE,
)
