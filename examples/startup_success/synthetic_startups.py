"""Seeded synthetic startups with FLASH's feature set, and the hidden rule behind their outcome.

Nothing here is real data. Companies are drawn stage by stage (later stages raise
more, earn more and employ more), and each gets a binary outcome ``success`` drawn
from a logistic model that the ML models must rediscover. The hidden rule is written
out so that anyone can check what "a good model" means on this data:

    logit = -1.0
          + 0.9  * min(prior_successful_exits_count, 3)
          + 0.04 * (min(runway_months, 36) - 18)
          - 0.25 * (min(burn_multiple, 10) - 3)
          + 0.02 * (gross_margin_percent - 50)
          + 0.5  * log10(tam_size_usd / 1e9)
          + 0.5  * has_technical_cofounder
          + 0.35 * network_effects_present
          + 0.25 * (tech_differentiation_score - 3)
          + 0.012 * (net_dollar_retention_percent - 100)
          + 0.3  * log1p(ltv_cac_ratio)
          + 0.25 * (investor_tier_primary == "tier_1")
          - 0.3  * key_person_dependency
          - 0.01 * customer_concentration_percent
    success ~ Bernoulli(1 / (1 + exp(-logit)))

Every other field is noise correlated with the stage, as in real data. Records are
plain dicts in the pack's input schema (``runway_months`` and ``burn_multiple`` are
left for the schema to derive), so generating, validating and vectorising follow the
same path as serving.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

STAGES = ("pre_seed", "seed", "series_a", "series_b", "series_c_plus")
STAGE_WEIGHTS = (0.25, 0.3, 0.22, 0.14, 0.09)
SECTORS = ("saas", "fintech", "healthtech", "ecommerce", "deeptech", "consumer", "climate", "other")
INVESTOR_TIERS = ("tier_1", "tier_2", "tier_3", "none")
PRODUCT_STAGES = ("concept", "mvp", "beta", "launched", "scaling")
# Typical capital raised to date per stage, in USD (the median of a log-normal draw).
_RAISED_MEDIAN = (4e5, 2.5e6, 1.2e7, 4e7, 1.2e8)


def hidden_logit(company: dict[str, Any], runway: float, burn_multiple: float) -> float:
    """The documented rule above, for one company."""
    return (
        -1.0
        + 0.9 * min(company["prior_successful_exits_count"], 3)
        + 0.04 * (min(runway, 36.0) - 18.0)
        - 0.25 * (min(burn_multiple, 10.0) - 3.0)
        + 0.02 * (company["gross_margin_percent"] - 50.0)
        + 0.5 * math.log10(company["tam_size_usd"] / 1e9)
        + 0.5 * company["has_technical_cofounder"]
        + 0.35 * company["network_effects_present"]
        + 0.25 * (company["tech_differentiation_score"] - 3)
        + 0.012 * (company["net_dollar_retention_percent"] - 100.0)
        + 0.3 * math.log1p(company["ltv_cac_ratio"])
        + 0.25 * (company["investor_tier_primary"] == "tier_1")
        - 0.3 * company["key_person_dependency"]
        - 0.01 * company["customer_concentration_percent"]
    )


def _company(rng: np.random.Generator, index: int) -> dict[str, Any]:
    stage = int(rng.choice(len(STAGES), p=STAGE_WEIGHTS))
    raised = float(_RAISED_MEDIAN[stage] * rng.lognormal(0.0, 0.5))
    cash = raised * float(rng.uniform(0.15, 0.8))
    burn = raised * float(rng.uniform(0.015, 0.07))
    has_revenue = stage >= 2 or rng.random() < (0.25 if stage == 0 else 0.7)
    arr = float(raised * rng.uniform(0.05, 0.8)) if has_revenue else 0.0
    growth = float(rng.uniform(10, 250)) if has_revenue else 0.0
    new_arr = arr * growth / (100.0 + growth)
    customers = int(rng.integers(1, 40 * (stage + 1) ** 2)) if has_revenue else 0
    tam = float(10 ** rng.uniform(7.5, 11.5))
    sam = tam * float(rng.uniform(0.05, 0.6))
    founders = int(rng.integers(1, 5))
    startups_before = int(rng.integers(0, 5))
    return {
        "company_name": f"Synthetic Co {index:05d}",
        "hq_country": str(rng.choice(["US", "GB", "DE", "FR", "IN", "SG"])),
        "funding_stage": STAGES[stage],
        "total_capital_raised_usd": round(raised, 2),
        "cash_on_hand_usd": round(cash, 2),
        "monthly_burn_usd": round(burn, 2),
        "annual_revenue_run_rate_usd": round(arr, 2),
        "revenue_growth_rate_percent": round(growth, 1),
        "gross_margin_percent": round(float(rng.uniform(20, 90)), 1) if has_revenue else 0.0,
        "net_new_arr_usd": round(new_arr, 2),
        "ltv_cac_ratio": round(float(rng.lognormal(0.8, 0.5)), 2) if has_revenue else 0.0,
        "investor_tier_primary": str(rng.choice(INVESTOR_TIERS, p=(0.15, 0.3, 0.3, 0.25))),
        "has_debt": bool(rng.random() < 0.1 * stage),
        "product_stage": PRODUCT_STAGES[min(4, stage + int(rng.integers(0, 2)))],
        "patent_count": int(rng.poisson(0.5 + stage)),
        "proprietary_tech": bool(rng.random() < 0.45),
        "network_effects_present": bool(rng.random() < 0.3),
        "has_data_moat": bool(rng.random() < 0.25),
        "regulatory_advantage_present": bool(rng.random() < 0.1),
        "tech_differentiation_score": int(rng.integers(1, 6)),
        "switching_cost_score": int(rng.integers(1, 6)),
        "brand_strength_score": int(rng.integers(1, 6)),
        "scalability_score": int(rng.integers(1, 6)),
        "product_retention_30d_percent": round(float(rng.uniform(10, 90)), 1)
        if has_revenue
        else 0.0,
        "sector": str(rng.choice(SECTORS)),
        "tam_size_usd": round(tam, 2),
        "sam_size_usd": round(sam, 2),
        "som_size_usd": round(sam * float(rng.uniform(0.01, 0.3)), 2),
        "market_growth_rate_percent": round(float(rng.uniform(-5, 60)), 1),
        "customer_count": customers,
        "customer_concentration_percent": round(float(rng.uniform(5, 80)), 1) if customers else 0.0,
        "competition_intensity": int(rng.integers(1, 6)),
        "competitors_count": int(rng.integers(0, 60)),
        "net_dollar_retention_percent": round(float(rng.normal(105, 20)), 1)
        if has_revenue
        else 100.0,
        "nps_score": int(rng.integers(-30, 80)),
        "founders_count": founders,
        "team_size_full_time": int(founders + rng.integers(0, 15 * (stage + 1) ** 2)),
        "years_experience_avg": round(float(rng.uniform(2, 25)), 1),
        "domain_expertise_years_avg": round(float(rng.uniform(0, 15)), 1),
        "prior_startup_experience_count": startups_before,
        "prior_successful_exits_count": int(rng.integers(0, startups_before + 1)),
        "board_experience_score": int(rng.integers(1, 6)),
        "advisors_count": int(rng.integers(0, 10)),
        "team_diversity_percent": round(float(rng.uniform(0, 70)), 1),
        "key_person_dependency": bool(rng.random() < 0.35),
        "has_technical_cofounder": bool(rng.random() < 0.6),
    }


def generate_companies(rows: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """`rows` companies and their 0/1 outcomes; the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    companies: list[dict[str, Any]] = []
    outcomes = np.empty(rows, dtype=np.int64)
    for i in range(rows):
        company = _company(rng, i)
        burn = company["monthly_burn_usd"]
        runway = min(company["cash_on_hand_usd"] / burn, 120.0) if burn > 0 else 120.0
        new_arr = company["net_new_arr_usd"]
        multiple = min(burn * 12.0 / new_arr, 20.0) if new_arr > 0 else 20.0
        probability = 1.0 / (1.0 + math.exp(-hidden_logit(company, runway, multiple)))
        outcomes[i] = int(rng.random() < probability)
        companies.append(company)
    return companies, outcomes
