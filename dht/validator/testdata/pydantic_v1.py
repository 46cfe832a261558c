"""Generates pydantic_v1.json: pydantic v1 verdicts, as hivemind's SchemaValidator applies them,
for the Go Schema validator's differential test. Run from dht/validator with a Python that has
pydantic (v1, or v2 with its pydantic.v1 module): python3 testdata/pydantic_v1.py"""
import json, math, struct, itertools
from typing import Dict, Optional
from pydantic.v1 import BaseModel, StrictInt, StrictFloat, StrictBool, StrictStr, conint, confloat, conbytes, constr, Extra, ValidationError

def tv(v):
    if v is None: return {"t":"nil"}
    if isinstance(v,bool): return {"t":"bool","v":v}
    if isinstance(v,int): return {"t":"int","v":str(v)}
    if isinstance(v,float): return {"t":"float","repr":repr(v),"bits":struct.pack(">d",v).hex()}
    if isinstance(v,str): return {"t":"str","v":v,"utf8_hex":v.encode().hex()}
    if isinstance(v,bytes): return {"t":"bytes","hex":v.hex()}
    if isinstance(v,list): return {"t":"list","items":[tv(x) for x in v]}
    if isinstance(v,tuple): return {"t":"tuple","items":[tv(x) for x in v]}
    if isinstance(v,dict): return {"t":"map","entries":[[tv(k),tv(x)] for k,x in v.items()]}
    raise TypeError(v)
def I(x): return {"t":"int","v":str(x)}
def F(x): return {"t":"float","repr":repr(x),"bits":struct.pack(">d",x).hex()}

class Inner(BaseModel):
    a: StrictInt
    b: float
    class Config: extra = Extra.forbid
class InnerAllow(BaseModel):
    a: StrictInt
    class Config: extra = Extra.allow

types = [
 ("StrictInt", StrictInt, {"type":"int","strict":True}),
 ("int", int, {"type":"int"}),
 ("conint_ge0_strict", conint(ge=0, strict=True), {"type":"int","strict":True,"ge":I(0)}),
 ("conint_gt0", conint(gt=0), {"type":"int","gt":I(0)}),
 ("conint_le10", conint(le=10), {"type":"int","le":I(10)}),
 ("conint_lt5_gt1", conint(lt=5, gt=1), {"type":"int","lt":I(5),"gt":I(1)}),
 ("conint_mult3", conint(multiple_of=3), {"type":"int","multiple_of":I(3)}),
 ("conint_gef", conint(ge=0.5), {"type":"int","ge":F(0.5)}),
 ("float", float, {"type":"float"}),
 ("StrictFloat", StrictFloat, {"type":"float","strict":True}),
 ("confloat_ge0", confloat(ge=0.0, strict=True), {"type":"float","strict":True,"ge":F(0.0)}),
 ("confloat_mult025", confloat(multiple_of=0.25), {"type":"float","multiple_of":F(0.25)}),
 ("confloat_lt_int", confloat(lt=2), {"type":"float","lt":I(2)}),
 ("bool", bool, {"type":"bool"}),
 ("StrictBool", StrictBool, {"type":"bool","strict":True}),
 ("bytes", bytes, {"type":"bytes"}),
 ("strictbytes", conbytes(strict=True), {"type":"bytes","strict":True}),
 ("str", str, {"type":"str"}),
 ("StrictStr", StrictStr, {"type":"str","strict":True}),
 ("constr_re", constr(regex=r"\d+x"), {"type":"str","regex":r"\d+x"}),
 ("opt_int", Optional[StrictInt], {"type":"optional","of":{"type":"int","strict":True}}),
 ("opt_float", Optional[float], {"type":"optional","of":{"type":"float"}}),
 ("dict_bytes_int", Dict[bytes, StrictInt], {"type":"map","key":{"type":"bytes"},"value":{"type":"int","strict":True}}),
 ("dict_str_float", Dict[str, float], {"type":"map","key":{"type":"str"},"value":{"type":"float"}}),
 ("dict_str_lbool", Dict[str, bool], {"type":"map","key":{"type":"str"},"value":{"type":"bool"}}),
 ("inner", Inner, {"type":"model","model":"Inner","extra":"forbid","fields":[{"name":"a","required":True,"type":{"type":"int","strict":True}},{"name":"b","required":True,"type":{"type":"float"}}]}),
 ("inner_allow", InnerAllow, {"type":"model","model":"InnerAllow","extra":"allow","fields":[{"name":"a","required":True,"type":{"type":"int","strict":True}}]}),
 ("opt_inner", Optional[Inner], {"type":"optional","of":{"type":"model","model":"Inner","extra":"forbid","fields":[{"name":"a","required":True,"type":{"type":"int","strict":True}},{"name":"b","required":True,"type":{"type":"float"}}]}}),
]
nan=float('nan')
values = [0,1,-1,2,3,4,5,6,9,10,11,2**53+1,2**63,2**64-1,-2**63, 0.0,-0.0,1.0,1.5,3.0,0.25,0.3,0.75,nan,float('inf'),float('-inf'),1e20,
  True,False,'', '1','true','x','5x','12x3','\n5x', b'',b'1',b'x',None,[1],[],(1,),(),{},{'a':1},{b'a':1},{'a':1,'b':2.0},{'a':1,'b':2},{'a':True,'b':2.0},{'a':1},{'a':1,'b':2.0,'c':3},
  {'a':1.0,'b':2.0},{'x':nan},{'x':1},{'x':0},{'x':'1'},{'x':2}, {b'k':1},{b'k':True},{'k':1},{b'k':nan}]
out=[]
specs={}
for name, T, spec in types:
    specs[name]=spec
    class M(BaseModel):
        f: Optional[T] if False else T
        class Config: extra = Extra.forbid
    for fld in M.__fields__.values(): fld.required=False
    for v in values:
        try:
            m = M.parse_obj({'f': v})
            parsed = m.dict(by_alias=True)['f']
            ok = not (parsed != v)
        except ValidationError:
            ok = False
        out.append([name, None, tv(v), ok])
    # subkey-style: {subkey: value} for dict types
    if spec["type"]=="map":
        for sk in [b'k', 'k', 1, True, 1.0, (1,), b'\xff', 0]:
            for v in [1, 1.0, True, 'x', b'x', nan, None]:
                try:
                    m = M.parse_obj({'f': {sk: v}})
                    parsed = m.dict(by_alias=True)['f']
                    ok = not (parsed != {sk: v})
                except ValidationError:
                    ok = False
                out.append([name, tv(sk), tv(v), ok])
import pydantic, os
doc = {
    "meta": {
        "produced_by": "testdata/pydantic_v1.py (run from dht/validator)",
        "pydantic": pydantic.VERSION + " (the pydantic.v1 API)",
        "rule": "hivemind SchemaValidator: Model(f: T).parse_obj({'f': v}), then accepted iff not (parsed.dict()['f'] != v); a ValidationError rejects",
        "case": "[type name, subkey (typed value) or null, value (typed value), accepted]",
    },
    "types": specs,
    "cases": out,
}
with open(os.path.join("testdata", "pydantic_v1.json"), "w") as f:
    json.dump(doc, f, separators=(",", ":"))
    f.write("\n")
print(len(out), sum(c[3] for c in out))
