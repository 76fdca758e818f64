"""The detection rules: one regex per rule, a literal prefilter, a validator and a legal category.

Rules are plain data so the same set runs on every engine (`scanner.detect.engine`). Patterns
stay inside the subset that Python `re` and Hyperscan's prefilter mode both accept: no
back-references, `[0-9]` instead of `\\d`, `[ \\t]` instead of `\\s`, and no match crosses a line
break (so text can be cut into chunks at line ends without losing a finding).

State-secret markings are matched on the text as written, with and without diacritics, and only
in the forms a stamp takes (upper case, a level name, or the `Độ mật:` field), so ordinary words
containing "mật" (mật khẩu, mật độ, bí mật) never trigger them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from scanner.detect import validators as v


class Category(StrEnum):
    MARKING_VN = "marking_vn"
    MARKING_FOREIGN = "marking_foreign"
    PII = "pii"
    SECRET = "secret"


class Sensitivity(StrEnum):
    """Legal weight of a finding. Markings carry their level instead."""

    BASIC = "basic"  # basic personal data (PDP Law 91/2025; GDPR Art. 4/87)
    SENSITIVE = "sensitive"  # sensitive personal data (PDP Law 91/2025; GDPR Art. 9/10)
    SECRET = "secret"  # credentials and keys (also sensitive personal data for log-ins)
    TUYET_MAT = "tuyet_mat"
    TOI_MAT = "toi_mat"
    MAT = "mat"
    DECLASSIFIED = "giai_mat"
    FOREIGN = "foreign_marking"


# Validator: (matched value, context found?, scan year) -> confidence, or None to drop it.
Validator = Callable[[str, bool, int], float | None]


@dataclass(frozen=True)
class Rule:
    id: str
    category: Category
    label: str
    pattern: str
    sensitivity: Sensitivity
    legal: tuple[str, ...]
    validator: Validator
    literals: tuple[str, ...] = ()  # one must occur in the chunk (case as given) for re to run
    caseless: bool = False
    multiline: bool = False
    context: tuple[str, ...] = ()  # folded context words (lower case, no diacritics)
    value_group: str = ""  # named group holding the value ("" = the whole match)
    names_only: bool = False  # matched only against file names
    mask: str = "digits"  # digits | email | secret | hidden | plain
    hs_pattern: str = ""  # override for engines that cannot run the pattern as written
    tags: tuple[str, ...] = field(default=())


# -- validators --------------------------------------------------------------------------------
def _always(conf: float) -> Validator:
    return lambda _v, _ctx, _y: conf


def _needs_context(conf: float) -> Validator:
    return lambda _v, ctx, _y: conf if ctx else None


def _cccd(value: str, ctx: bool, year: int) -> float | None:
    if not v.vn_personal_id(value, year):
        return None
    return 0.9 if ctx else 0.45


def _mst(value: str, ctx: bool, _y: int) -> float | None:
    if not v.vn_tax_code(value):
        return None
    return 0.9 if ctx else 0.4


def _phone(value: str, ctx: bool, _y: int) -> float | None:
    if not v.vn_mobile(value):
        return None
    return 0.9 if ctx else 0.6


def _card(value: str, ctx: bool, _y: int) -> float | None:
    if not v.luhn(value) or not v.card_issuer(value):
        return None
    return 0.95 if ctx else 0.8


def _iban(value: str, _ctx: bool, _y: int) -> float | None:
    return 0.95 if v.iban(value) else None


def _de_tax(value: str, ctx: bool, _y: int) -> float | None:
    if not v.de_tax_id(value):
        return None
    return 0.9 if ctx else 0.4


def _jwt(value: str, _ctx: bool, _y: int) -> float | None:
    return 0.9 if v.jwt(value) else None


def _password(value: str, _ctx: bool, _y: int) -> float | None:
    return 0.8 if v.real_password(value) else None


# -- shared fragments --------------------------------------------------------------------------
_L = r"[A-Za-zÀ-ỹĐđ]"  # a letter of Vietnamese, German or English text
MAT = "M(?:Ậ|A)T"
_NOT_TRAP = r"(?![ \t]*(?:KH(?:Ẩ|A)U|Đ(?:Ộ|O)|DO[ \t]))"  # MẬT KHẨU / MẬT ĐỘ are words
_LEVEL_WORDS = "(?:tuyệt|tuyet|tối|toi)?[ \t]*mật|(?:tuyệt|tuyet|tối|toi)?[ \t]*mat"

VN_SECRET = ("vn-state-secrets-law:117/2025", "vn-state-secrets-law:29/2018")
PDP_BASIC = ("vn-pdpl:91/2025:basic", "vn-decree:356/2025")
PDP_SENSITIVE = ("vn-pdpl:91/2025:sensitive", "vn-decree:356/2025")
GDPR_ID = ("gdpr:art-87",)
GDPR_BASIC = ("gdpr:art-4",)

RULES: tuple[Rule, ...] = (
    # -- Vietnamese state-secret markings -------------------------------------------------------
    Rule(
        "marking.vn.tuyet_mat", Category.MARKING_VN, "TUYỆT MẬT marking",
        rf"(?<!{_L})TUY(?:Ệ|E)T[ \t]+{MAT}(?!{_L}){_NOT_TRAP}",
        Sensitivity.TUYET_MAT, VN_SECRET, _always(0.95), literals=("TUY",), mask="plain",
    ),
    Rule(
        "marking.vn.toi_mat", Category.MARKING_VN, "TỐI MẬT marking",
        rf"(?<!{_L})T(?:Ố|O)I[ \t]+{MAT}(?!{_L}){_NOT_TRAP}",
        Sensitivity.TOI_MAT, VN_SECRET, _always(0.95), literals=("T",), mask="plain",
        hs_pattern=rf"T(?:Ố|O)I[ \t]+{MAT}",
    ),
    Rule(
        "marking.vn.mat", Category.MARKING_VN, "MẬT stamp",
        rf"^[ \t]*[\[(\"'«*]*{MAT}[\])\"'»*.]*[ \t]*$",
        Sensitivity.MAT, VN_SECRET, _always(0.9), literals=("M",), multiline=True, mask="plain",
    ),
    Rule(
        "marking.vn.do_mat", Category.MARKING_VN, "'Độ mật:' field",
        rf"(?<!{_L})(?:độ|do)[ \t]+(?:mật|mat)[ \t]*:[ \t]*(?P<v>{_LEVEL_WORDS})(?!{_L})",
        Sensitivity.MAT, VN_SECRET, _always(0.95), caseless=True, value_group="v", mask="plain",
        hs_pattern=r"(?:độ|do)[ \t]+(?:mật|mat)[ \t]*:",
    ),
    Rule(
        "marking.vn.giai_mat", Category.MARKING_VN, "GIẢI MẬT (declassified) stamp",
        rf"(?<!{_L})GI(?:Ả|A)I[ \t]+{MAT}(?!{_L})",
        Sensitivity.DECLASSIFIED, VN_SECRET, _always(0.9), literals=("GI",), mask="plain",
    ),
    Rule(
        "marking.vn.mat_name", Category.MARKING_VN, "MẬT in the file name",
        rf"(?<!{_L}){MAT}(?!{_L}){_NOT_TRAP}",
        Sensitivity.MAT, VN_SECRET, _always(0.8), literals=("M",), names_only=True, mask="plain",
    ),
    # -- German and English markings ------------------------------------------------------------
    Rule(
        "marking.de.vs_nfd", Category.MARKING_FOREIGN, "VS-NUR FÜR DEN DIENSTGEBRAUCH",
        rf"VS[ \t]*-[ \t]*(?:NUR[ \t]+F(?:Ü|UE|U)R[ \t]+DEN[ \t]+DIENSTGEBRAUCH|NfD)(?!{_L})",
        Sensitivity.FOREIGN, ("de-vsa:2023",), _always(0.95), literals=("VS",),
        caseless=True, mask="plain",
    ),
    Rule(
        "marking.de.vs", Category.MARKING_FOREIGN, "VS-VERTRAULICH / GEHEIM",
        rf"(?<!{_L})(?:VS[ \t]*-[ \t]*VERTRAULICH|(?:STRENG[ \t]+)?GEHEIM)(?!{_L})",
        Sensitivity.FOREIGN, ("de-vsa:2023",), _always(0.9), literals=("VERTRAULICH", "GEHEIM"),
        mask="plain",
    ),
    Rule(
        "marking.stamp", Category.MARKING_FOREIGN, "classification stamp line",
        r"^[ \t\-*=#/|]*(?:VERTRAULICH|CONFIDENTIAL|STRICTLY CONFIDENTIAL|SECRET|TOP SECRET)"
        r"[ \t\-*=#/|]*$",
        Sensitivity.FOREIGN, ("iso27001:2022:5.12",), _always(0.85),
        literals=("VERTRAULICH", "CONFIDENTIAL", "SECRET"), multiline=True, mask="plain",
    ),
    # -- personal data --------------------------------------------------------------------------
    Rule(
        "pii.vn.personal_id", Category.PII, "Vietnamese personal ID (CCCD)",
        r"(?<![0-9])[0-9]{3}[ .]?[0-9]{3}[ .]?[0-9]{6}(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_ID, _cccd,
        context=("cccd", "can cuoc", "so dinh danh", "cmnd/cccd", "giay to tuy than",
                 "citizen id", "mst ca nhan", "id card"),
    ),
    Rule(
        "pii.vn.old_id", Category.PII, "Vietnamese people's ID (CMND)",
        r"(?<![0-9])[0-9]{9}(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_ID, _needs_context(0.75),
        context=("cmnd", "chung minh nhan dan", "cmtnd", "so cmt", "chung minh thu"),
    ),
    Rule(
        "pii.vn.tax_code", Category.PII, "Vietnamese tax code (MST)",
        r"(?<![0-9])[0-9]{10}(?:-[0-9]{3})?(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC, _mst,
        context=("ma so thue", "mst", "msdn", "ma so doanh nghiep", "tax code"),
    ),
    Rule(
        "pii.vn.phone", Category.PII, "Vietnamese mobile number",
        r"(?<![0-9+])(?:\+84[ .]?|84|0)[35789][0-9](?:[ .]?[0-9]){7}(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_BASIC, _phone,
        context=("dt", "sdt", "dien thoai", "di dong", "lien he", "zalo", "phone", "tel",
                 "hotline"),
    ),
    Rule(
        "pii.vn.social_insurance", Category.PII, "Vietnamese social-insurance number (BHXH)",
        r"(?<![0-9])[0-9]{10}(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC, _needs_context(0.8),
        context=("bhxh", "bhyt", "bao hiem xa hoi", "so bao hiem", "the bao hiem y te"),
    ),
    Rule(
        "pii.de.tax_id", Category.PII, "German tax ID (Steuer-ID)",
        r"(?<![0-9])[1-9][0-9][ ]?[0-9]{3}[ ]?[0-9]{3}[ ]?[0-9]{3}(?![0-9])",
        Sensitivity.BASIC, GDPR_ID, _de_tax,
        context=("steuer-id", "steueridentifikationsnummer", "idnr", "steuer id", "tax id",
                 "identifikationsnummer"),
    ),
    Rule(
        "pii.iban", Category.PII, "IBAN",
        r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?"
        r"(?![A-Za-z0-9])",
        Sensitivity.SENSITIVE, PDP_SENSITIVE + GDPR_BASIC, _iban,
    ),
    Rule(
        "pii.payment_card", Category.PII, "payment card number",
        r"(?<![0-9])[2-9][0-9]{3}(?:[ -]?[0-9]{4}){2}[ -]?[0-9]{1,7}(?![0-9])",
        Sensitivity.SENSITIVE, (*PDP_SENSITIVE, "pci-dss:4.0:3.4", *GDPR_BASIC), _card,
        context=("so the", "the atm", "napas", "card", "visa", "mastercard", "kreditkarte"),
    ),
    Rule(
        "pii.passport", Category.PII, "passport number",
        r"(?<![A-Za-z0-9])(?:[A-Z][0-9]{7}|[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8})"
        r"(?![A-Za-z0-9])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_ID, _needs_context(0.8),
        context=("ho chieu", "so ho chieu", "passport", "reisepass", "passnummer"),
    ),
    Rule(
        "pii.email", Category.PII, "e-mail address",
        r"(?<![A-Za-z0-9._%+:/-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
        r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_BASIC, _always(0.85), literals=("@",), mask="email",
    ),
    Rule(
        "pii.date_of_birth", Category.PII, "date of birth",
        r"(?<![0-9])(?:0?[1-9]|[12][0-9]|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-](?:19|20)[0-9]{2}"
        r"(?![0-9])",
        Sensitivity.BASIC, PDP_BASIC + GDPR_BASIC, _needs_context(0.75),
        context=("ngay sinh", "sinh ngay", "nam sinh", "date of birth", "dob", "born",
                 "geboren", "geburtsdatum"),
    ),
    # -- secrets -------------------------------------------------------------------------------
    Rule(
        "secret.private_key", Category.SECRET, "private key",
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
        Sensitivity.SECRET, ("cwe:798", *PDP_SENSITIVE), _always(0.99),
        literals=("-----BEGIN",), mask="secret",
    ),
    Rule(
        "secret.putty_key", Category.SECRET, "PuTTY private key",
        r"PuTTY-User-Key-File-[0-9]+:", Sensitivity.SECRET, ("cwe:798",), _always(0.95),
        literals=("PuTTY-User-Key-File-",), mask="secret",
    ),
    Rule(
        "secret.aws_key_id", Category.SECRET, "AWS access key id",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Z0-9])",
        Sensitivity.SECRET, ("cwe:798",), _always(0.95),
        literals=("AKIA", "ASIA", "ABIA", "ACCA"), mask="secret",
    ),
    Rule(
        "secret.gcp_api_key", Category.SECRET, "Google API key",
        r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", Sensitivity.SECRET, ("cwe:798",),
        _always(0.9), literals=("AIza",), mask="secret",
    ),
    Rule(
        "secret.github_token", Category.SECRET, "GitHub token",
        r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])",
        Sensitivity.SECRET, ("cwe:798",), _always(0.95), literals=("gh", "github_pat_"),
        mask="secret",
    ),
    Rule(
        "secret.gitlab_token", Category.SECRET, "GitLab token",
        r"glpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])", Sensitivity.SECRET, ("cwe:798",),
        _always(0.95), literals=("glpat-",), mask="secret",
    ),
    Rule(
        "secret.slack_token", Category.SECRET, "Slack token",
        r"xox[baprs]-[A-Za-z0-9-]{10,72}", Sensitivity.SECRET, ("cwe:798",), _always(0.9),
        literals=("xox",), mask="secret",
    ),
    Rule(
        "secret.stripe_key", Category.SECRET, "Stripe live key",
        r"(?:sk|rk)_live_[A-Za-z0-9]{24,99}", Sensitivity.SECRET, ("cwe:798",), _always(0.95),
        literals=("_live_",), mask="secret",
    ),
    Rule(
        "secret.azure_storage_key", Category.SECRET, "Azure storage account key",
        r"AccountKey=[A-Za-z0-9+/]{86}==", Sensitivity.SECRET, ("cwe:798",), _always(0.95),
        literals=("AccountKey=",), mask="secret",
    ),
    Rule(
        "secret.jwt", Category.SECRET, "JSON Web Token",
        r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        Sensitivity.SECRET, ("cwe:798",), _jwt, literals=("eyJ",), mask="secret",
    ),
    Rule(
        "secret.connection_string", Category.SECRET, "connection string with a password",
        r"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^:/@ \t\r\n\"']{1,64}:(?P<v>[^@/ \t\r\n\"']{1,128})@"
        r"[A-Za-z0-9._-]{1,255}",
        Sensitivity.SECRET, ("cwe:798", *PDP_SENSITIVE), _password, literals=("://",),
        value_group="v", mask="hidden",
    ),
    Rule(
        "secret.password_assignment", Category.SECRET, "password in a config or text file",
        r"(?<![A-Za-z])(?:password|passwd|pwd|pass|secret|token|api[_-]?key|"
        r"m(?:ậ|a)t[ _]?kh(?:ẩ|a)u)[\"']?[ \t]*[:=][ \t]*"
        r"(?P<v>\"[^\"\r\n]{1,200}\"|'[^'\r\n]{1,200}'|[^ \t\r\n,;\"']{1,200})",
        Sensitivity.SECRET, ("cwe:256", "cwe:798", *PDP_SENSITIVE), _password, caseless=True,
        value_group="v", mask="hidden",
        hs_pattern=r"(?:password|passwd|pwd|pass|secret|token|api[_-]?key|m(?:ậ|a)t[ _]?kh(?:ẩ|a)u)"
        r"[\"']?[ \t]*[:=]",
    ),
)  # fmt: skip

RULES_BY_ID = {r.id: r for r in RULES}
