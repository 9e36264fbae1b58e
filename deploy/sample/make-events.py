#!/usr/bin/env python3
# make-events.py: DEV TOOL. Generates the sample event stream deploy/sample/events.jsonl.
#
# events.jsonl is the committed output of this script; regenerate it only on purpose:
#
#   python3 deploy/sample/make-events.py > deploy/sample/events.jsonl
#   python3 deploy/sample/make-events.py --expected deploy/sample/expected.txt > /dev/null
#   python3 deploy/sample/make-events.py --table      # the invalid-event table for README.md
#
# Deterministic: a fixed random seed and a fixed reference time (REF_NOW, below), no
# dependence on the clock or on installed packages. It reads the og.area, og.grid_crosswalk
# and og.category rows of karamay-registry.sql (next to this file), so the events always
# name grids and categories that the sample registry has.
#
# The JSON Lines format is the one of docs/integrating.md (keys = proto field names
# of onegrid.v1.Envelope). Lines {"raw_base64": "..."} carry hand-encoded protobuf bytes
# for byte-level faults; the encoder below follows proto/onegrid/v1/event.proto.
#
# All times lie between REF_NOW - 20 days and REF_NOW - 1 hour (in +08:00), except the
# events that are invalid on purpose because of their time.

import argparse
import base64
import datetime as dt
import json
import os
import random
import re
import struct
import sys

SEED = 20261126
REF_NOW = dt.datetime(2026, 11, 26, 0, 0, 0, tzinfo=dt.timezone.utc)
TZ = dt.timezone(dt.timedelta(hours=8))
WINDOW_DAYS = 20
HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, 'karamay-registry.sql')

# --------------------------------------------------------------------------- registry


def parse_registry(path):
    """Reads the VALUES rows (one per line) of the tables the generator needs."""
    tables = {}
    cur = None
    tok = re.compile(r"\s*(?:'((?:[^']|'')*)'|(NULL|true|false|-?\d+))\s*(?:,|$)")
    with open(path, encoding='utf-8') as f:
        for line in f:
            m = re.match(r'INSERT INTO (og\.\w+)', line)
            if m:
                cur = m.group(1)
                tables.setdefault(cur, [])
                continue
            if cur and line.startswith('  ('):
                body = line.strip()
                end = body.endswith(');')
                body = body[1:-2] if end else body[1:-2]  # strip '(' and '),' / ');'
                vals, pos = [], 0
                while pos < len(body):
                    t = tok.match(body, pos)
                    if not t:
                        raise SystemExit('cannot parse registry line: ' + line)
                    vals.append(t.group(1).replace("''", "'") if t.group(1) is not None else
                                {'NULL': None, 'true': True, 'false': False}.get(t.group(2), t.group(2)))
                    pos = t.end()
                tables[cur].append(vals)
                if end:
                    cur = None
    return tables


REG = parse_registry(REGISTRY)
AREA = {r[0]: {'level': r[1], 'parent': r[2], 'name': r[3], 'district': r[4]} for r in REG['og.area']}
CATEGORIES = {r[0] for r in REG['og.category']}
XWALK = {}  # source -> {source grid id: area code}
for src, gid, code in REG['og.grid_crosswalk']:
    XWALK.setdefault(src, {})[gid] = code
SOURCES = {r[0] for r in REG['og.source_system']}


def community_of(code):
    return code[:12]


def ids_for(source, community=None, grid=None):
    """A source's grid ids, optionally only those in one community or on one grid."""
    out = []
    for gid, code in sorted(XWALK[source].items()):
        if grid and code != grid:
            continue
        if community and community_of(code) != community:
            continue
        out.append(gid)
    return out


# Approximate centres (WGS 84) of the sample communities. 独山子区 lies about 140 km south
# of the city centre (~44.33 N) and 乌尔禾区 north-east of it (~46.09 N).
CENTRE = {
    '650202001001': (44.3282, 84.8703), '650202001002': (44.3221, 84.8852),
    '650202002001': (44.3349, 84.8951), '650202002002': (44.3183, 84.8619),
    '650203002001': (45.5981, 84.8722), '650203002002': (45.5903, 84.8851),
    '650203002003': (45.5802, 84.8603), '650203003001': (45.6052, 84.8904),
    '650203003002': (45.6121, 84.8652),
    '650204001001': (45.6921, 85.1253), '650204001002': (45.6883, 85.1381),
    '650204001003': (45.6972, 85.1182), '650204002001': (45.6553, 85.0604),
    '650205001001': (46.0882, 85.6903), '650205001002': (46.0821, 85.7002),
}
ROADS = {
    '650202': ['独山子大道', '西宁路', '金山路', '大庆东路', '北京路', '乌鲁木齐路'],
    '650203': ['准噶尔路', '友谊路', '昆仑路', '天山路', '迎宾大道', '胜利路', '世纪大道', '塔河路'],
    '650204': ['中兴路', '三平路', '平北路', '嘉和路', '南林路'],
    '650205': ['柳树街', '白杨路', '魔鬼城路', '和平街'],
}
DISTRICT_NAME = {c: a['name'] for c, a in AREA.items() if a['level'] == 'district'}

for code, a in AREA.items():
    if a['level'] == 'community' and code not in CENTRE:
        raise SystemExit('make-events.py: no centre for community %s %s' % (code, a['name']))

# --------------------------------------------------------------------------- content

SURNAMES = '王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方邹熊白孟秦邱侯江尹薛闫段雷黎史龙陶贺顾毛郝龚邵万钱严覃武戴莫孔向汤'
GIVEN = ['建国', '秀兰', '桂英', '志强', '海燕', '玉梅', '新民', '丽娟', '国庆', '春梅', '永红', '卫东',
         '淑珍', '德胜', '晓东', '红霞', '文华', '玉兰', '建华', '明', '静', '磊', '娟', '勇', '艳',
         '阿依古丽', '努尔兰', '古丽娜尔', '买买提', '热依拉']
ELDER = ['阿姨', '大爷', '奶奶', '大叔', '大娘']


def person(rnd):
    s = rnd.choice(SURNAMES)
    g = rnd.choice(GIVEN)
    if len(g) > 2:          # Uyghur / Kazakh given names are used alone
        return g
    return s + g


def elder(rnd):
    return rnd.choice(SURNAMES) + rnd.choice(ELDER)


def phone(rnd):
    return '1%d%d9900%04d' % (rnd.choice([3, 5, 8]), rnd.randint(0, 9), rnd.randint(0, 9999))


# (title, description) templates per category. Placeholders: {c} community, {b} building,
# {u} unit, {f} floor, {r} road, {r2} crossing road, {n} resident, {e} elderly resident,
# {t} indoor temperature, {d} district.
T = {
    'facility.handrail': [
        ('{b}号楼{u}单元门前需安装扶手', '联户长入户走访时,{e}反映腿脚不便,单元门前三级台阶没有扶手,冬季结冰后出入困难,希望安装扶手。'),
        ('{b}号楼{u}单元楼梯扶手松动', '{b}号楼{u}单元二至三楼楼梯扶手固定螺栓松动,老人扶着上下楼晃动明显,存在摔倒风险。'),
        ('{b}号楼单元门口台阶加装扶手', '{e}家住{f}楼,老伴行动不便,每天出门锻炼需要人搀扶,希望在单元门口台阶加装扶手和防滑条。'),
        ('{b}号楼{u}单元扶手断裂', '楼道一楼扶手末端断裂,断口有毛刺,容易划伤,请尽快修复。'),
        ('老年居民集中反映单元门前缺少扶手', '网格员走访{b}号楼至{b2}号楼,有{k}户老年居民反映单元门前缺少扶手,建议统一摸排安装。'),
    ],
    'facility.streetlight': [
        ('{r}路段路灯不亮', '{r}与{r2}交叉口往东约200米,连续{k}盏路灯夜间不亮,行人和车辆通行存在安全隐患。'),
        ('{c}{b}号楼前路灯损坏', '{b}号楼前庭院灯灯罩破损、灯泡不亮已一周,晚上居民出入看不清路面。'),
        ('{r}路灯白天常亮', '{r}中段路灯白天一直亮着,浪费电能,疑似控制器故障。'),
        ('{r}路灯杆倾斜', '{r}人行道旁一根路灯杆明显倾斜,底座锈蚀,大风天气有倒伏风险。'),
    ],
    'facility.manhole_cover': [
        ('{r}井盖缺失', '{r}与{r2}交叉口东侧非机动车道井盖缺失,已用锥桶临时围挡,需尽快补装。'),
        ('{c}{b}号楼前井盖破损下陷', '{b}号楼前消防通道上的井盖破裂下陷,车辆碾压有塌陷危险。'),
        ('{r}雨水箅子缺失', '{r}公交站旁雨水箅子缺失,夜间行人容易踩空。'),
    ],
    'urban.road_damage': [
        ('{r}路面出现坑槽', '{r}机动车道出现约1平方米坑槽,车辆经过颠簸,夜间容易发生事故。'),
        ('{r}人行道地砖松动破损', '{r}人行道多处地砖松动翘起,老人和儿童行走容易绊倒。'),
        ('{c}小区主路冻胀开裂', '{c}小区主路入冬后冻胀开裂,裂缝宽约3厘米,车辆通行颠簸。'),
        ('{r}路缘石损坏', '{r}与{r2}交叉口路缘石被车辆撞坏,碎块散落在非机动车道。'),
    ],
    'urban.illegal_parking': [
        ('{r}机动车占用人行道停放', '{r}人行道上长期停放多辆机动车,行人被迫走机动车道。'),
        ('货车占道停放影响通行', '{r}与{r2}交叉口附近一辆厢式货车连续多日占道停放,影响车辆转弯。'),
        ('{c}小区门口车辆乱停', '{c}小区门口车辆乱停乱放,早晚高峰居民出行拥堵。'),
        ('僵尸车长期占用公共车位', '{c}{b}号楼前一辆无牌轿车停放半年以上,落满灰尘,占用公共车位。'),
    ],
    'urban.street_vendor': [
        ('{r}流动摊贩占道经营', '{r}农贸市场门口流动摊贩占道经营,影响行人通行,收摊后遗留垃圾。'),
        ('商户出店经营占用人行道', '{r}一家五金店将货物摆放到人行道上,占道约5米。'),
        ('夜市摊点占用消防通道', '{c}小区东门外夜市摊点占用消防通道,影响应急车辆通行。'),
    ],
    'urban.illegal_construction': [
        ('一楼住户私自扩建阳台', '{c}{b}号楼一楼住户私自扩建阳台,占用公共绿地约10平方米。'),
        ('楼顶私搭彩钢房', '{c}{b}号楼楼顶有人私搭彩钢房,居民担心影响房屋安全和防水。'),
        ('小区绿地内私建车棚', '{c}{b}号楼后绿地内有人私建简易车棚。'),
    ],
    'environment.garbage': [
        ('{c}{b}号楼旁垃圾桶满溢', '{b}号楼旁垃圾桶满溢,垃圾散落地面,已两天未清运。'),
        ('楼后空地堆放建筑垃圾', '{c}{b}号楼后空地堆放装修建筑垃圾,影响环境,扬尘明显。'),
        ('{r}路边散落生活垃圾', '{r}路边绿化带内散落塑料袋、饭盒等生活垃圾。'),
        ('大件家具随意丢弃', '{c}{b}号楼单元门外丢弃旧沙发、床垫,堵塞通道。'),
    ],
    'environment.noise': [
        ('夜间KTV噪声扰民', '{r}一家KTV每天夜里12点后仍音响很大,附近{c}居民无法休息。'),
        ('广场舞音响声音过大', '{c}小区广场舞音响音量过大,晚上9点后仍未停止。'),
        ('商铺高音喇叭招揽顾客', '{r}沿街商铺用高音喇叭循环播放促销广告,影响周边居民。'),
        ('夜间施工噪声扰民', '{c}附近工地夜间施工噪声很大,居民反映已持续一周。'),
        ('楼上住户深夜噪声', '{c}{b}号楼{u}单元楼上住户经常深夜拖动家具、大声喧哗。'),
    ],
    'environment.snow': [
        ('{r}人行道积雪未清', '昨夜降雪后{r}人行道积雪未清,已踩实结冰,行人容易滑倒。'),
        ('{c}小区主干道积雪结冰', '{c}小区主干道积雪结冰,老人出门不敢走,希望尽快清雪撒融雪剂。'),
        ('公交站台积雪清理不及时', '{r}公交站台积雪较厚,候车乘客只能站在机动车道上。'),
        ('{b}号楼前坡道结冰', '{c}{b}号楼前无障碍坡道结冰,轮椅无法通行。'),
    ],
    'public_security.patrol': [
        ('巡逻发现单元门禁长期敞开', '夜间巡逻发现{c}{b}号楼{u}单元门禁损坏、长期敞开,外来人员可随意进入。'),
        ('巡逻发现可疑人员在车库徘徊', '平安志愿者街面巡守时发现两名陌生人员在{c}地下车库反复查看车辆,已提醒物业加强巡查。'),
        ('小区监控探头损坏', '巡逻发现{c}东门监控探头损坏,画面无法显示。'),
        ('商铺夜间卷帘门未锁', '夜间巡逻发现{r}一商铺卷帘门未锁,已联系店主。'),
        ('无主电动车长期停放', '{c}{b}号楼下一辆电动车停放两个多月无人认领,疑似被盗车辆。'),
        ('巡逻发现独居老人家中长时间无人应门', '巡守队员发现{c}{b}号楼独居{e}家门口报纸堆积,敲门无人应答,已联系社区和家属。'),
    ],
    'hazard.gas': [
        ('{b}号楼楼道内闻到燃气味', '{c}{b}号楼{u}单元三楼楼道有明显燃气味,居民担心泄漏。'),
        ('餐饮店燃气软管老化', '巡查发现{r}一家餐馆燃气软管老化开裂,使用的是非标减压阀。'),
        ('居民家中燃气报警器鸣响', '{c}{b}号楼{u}单元{f}楼住户家中燃气报警器鸣响,住户已开窗通风。'),
        ('燃气表箱锈蚀漏气', '{c}{b}号楼外墙燃气表箱锈蚀,靠近能闻到气味。'),
    ],
    'hazard.fire': [
        ('楼道堆放杂物堵塞消防通道', '{c}{b}号楼{u}单元楼道堆放纸箱、旧家具,堵塞疏散通道。'),
        ('消火栓箱内水带缺失', '{c}{b}号楼一楼消火栓箱内水带、水枪缺失,箱门无法关闭。'),
        ('消防车通道被私家车占用', '{c}小区消防车通道被多辆私家车长期占用。'),
        ('地下室堆放易燃物品', '{c}{b}号楼地下室堆放大量纸板、泡沫等易燃物品,无人看管。'),
        ('商铺灭火器过期未更换', '{r}沿街商铺灭火器压力不足、已过期,安全检查时发现。'),
    ],
    'hazard.electrical': [
        ('电动自行车飞线充电', '{c}{b}号楼{u}单元住户从{f}楼窗户拉电线给楼下电动车充电。'),
        ('电动车推入楼道充电', '{c}{b}号楼{u}单元楼道内停放电动车并充电,夜间无人看管。'),
        ('楼道内私拉电线', '{c}{b}号楼楼道内私拉电线,接头裸露,缠绕在暖气管上。'),
        ('配电箱门损坏线路裸露', '{c}{b}号楼一楼配电箱门损坏,线路裸露,儿童容易触碰。'),
    ],
    'hazard.building': [
        ('{b}号楼外墙保温层脱落', '{c}{b}号楼北侧外墙保温层大面积空鼓,已有小块脱落,楼下是人行通道。'),
        ('阳台楼板出现裂缝', '{c}{b}号楼{u}单元{f}楼阳台楼板出现贯通裂缝,住户担心安全。'),
        ('楼顶女儿墙砖块松动', '{c}{b}号楼楼顶女儿墙砖块松动,大风天气有坠落风险。'),
        ('空调外机支架锈蚀', '{c}{b}号楼{f}楼空调外机支架严重锈蚀,下方是单元出入口。'),
    ],
    'hazard.flood': [
        ('地下室供水管道爆裂积水', '{c}{b}号楼地下室供水管道爆裂,积水约20厘米,淹及配电设施。'),
        ('小区主路检查井冒水结冰', '{c}小区主路检查井冒水,路面结冰,车辆行人容易滑倒。'),
        ('{b}号楼暖气管道爆裂', '{c}{b}号楼{u}单元楼道暖气管道爆裂,热水顺楼梯流下。'),
    ],
    'dispute.neighbour': [
        ('楼道堆放杂物引发邻里矛盾', '{c}{b}号楼{u}单元两户居民因楼道堆放杂物问题多次争吵,请求社区调解。'),
        ('邻居装修时间过早影响休息', '{n}反映楼上邻居每天早上7点前开始装修,协商无果。'),
        ('宠物狗夜间吠叫引发邻里争执', '{c}{b}号楼住户饲养的狗夜间吠叫,邻居多次沟通未果,双方发生口角。'),
        ('共用楼道停放电动车引发争执', '{b}号楼{u}单元邻里因楼道停放电动车发生争执。'),
        ('楼下住户加装晾衣架遮挡采光', '{n}反映楼下住户加装伸出式晾衣架,遮挡自家窗户采光,双方协商未果。'),
    ],
    'dispute.water_leak': [
        ('楼上渗水导致天花板霉变', '{n}反映楼上住户卫生间防水层损坏,自家卫生间天花板长期渗水霉变,协商维修未果。'),
        ('厨房管道漏水泡坏楼下吊顶', '{c}{b}号楼{u}单元{f}楼厨房下水管漏水,泡坏楼下吊顶,双方对赔偿金额有争议。'),
        ('暖气漏水殃及楼下住户', '{c}{b}号楼楼上住户暖气片漏水,楼下住户墙面受损,双方对责任认定有分歧。'),
    ],
    'dispute.property': [
        ('业主对物业费上涨有异议', '{c}部分业主对物业费上涨有异议,希望社区组织业主与物业协商。'),
        ('地下车库收费标准争议', '{c}业主反映地下车库月租标准偏高,与物业协商未果。'),
        ('物业维修不及时引发不满', '{n}反映报修单元门禁一个月未修,与物业工作人员发生争执。'),
    ],
    'dispute.family': [
        ('老人赡养问题兄妹产生矛盾', '{e}的子女因赡养费用分担问题产生矛盾,老人请求社区帮助调解。'),
        ('夫妻因家庭琐事多次争吵', '{c}{b}号楼一对夫妻因家庭琐事多次争吵,邻居担心发生意外,请求调解。'),
        ('房屋继承引发家庭纠纷', '{n}反映兄弟姐妹因父母遗留住房继承问题产生纠纷。'),
    ],
    'demand.elderly_care': [
        ('独居老人申请助餐服务', '{c}{b}号楼独居{e}年过八旬,做饭困难,希望申请社区老年助餐服务。'),
        ('高龄老人需要上门理发', '{e}卧床多年,家属希望志愿者上门理发。'),
        ('空巢老人冬季需定期探访', '{c}{b}号楼空巢{e}子女在外地,冬季出门不便,希望安排志愿者定期探访、陪老人聊天。'),
        ('申请居家养老服务上门评估', '{n}为母亲申请居家养老服务补贴,需要上门评估。'),
        ('老人就医需要陪同', '{e}行动不便,下周需到医院复查,希望社区协调志愿者陪同。'),
        ('孤寡老人家中灯泡需更换', '{c}{b}号楼孤寡{e}家中灯泡坏了,自己无法登高更换。'),
    ],
    'demand.repair': [
        ('楼道感应灯不亮', '{c}{b}号楼{u}单元{f}楼楼道感应灯不亮,需更换灯泡。'),
        ('单元门禁损坏无法关闭', '{c}{b}号楼{u}单元门禁损坏,单元门无法关闭,冬季楼道寒冷。'),
        ('楼道窗户玻璃破损灌风', '{c}{b}号楼{u}单元{f}楼楼道窗户玻璃破损,冷风灌入,担心冻裂水管。'),
        ('单元门闭门器损坏', '{c}{b}号楼{u}单元闭门器损坏,门关不严。'),
        ('公共下水管堵塞反味', '{c}{b}号楼{u}单元公共下水管堵塞,一楼住户家中反水反味。'),
    ],
    'demand.heating': [
        ('室内温度仅{t}度暖气不热', '{c}{b}号楼{u}单元{f}楼住户反映室内温度仅{t}度,暖气片不热。'),
        ('暖气片上热下凉需排气', '{n}家暖气片上热下凉,怀疑有气堵,希望供热公司上门排气。'),
        ('整栋楼暖气温度偏低', '{c}{b}号楼多户居民反映室内温度低于18度,老人孩子受冻。'),
        ('新入住房屋未通暖', '{n}反映新买的二手房一直未通暖,已缴纳采暖费。'),
    ],
    'policy.question': [
        ('咨询高龄津贴申领条件', '{n}咨询八十岁以上老人高龄津贴的申领条件和所需材料。'),
        ('咨询城乡居民医保缴费时间', '{n}咨询2027年度城乡居民医保缴费时间和缴费渠道。'),
        ('咨询老旧小区改造是否包含本楼', '{c}{b}号楼居民咨询明年老旧小区改造计划是否包含本楼。'),
        ('咨询残疾人两项补贴申请', '{n}咨询残疾人生活补贴和护理补贴的申请流程。'),
        ('咨询临时救助申请流程', '{n}因家人患病生活困难,咨询临时救助的申请条件和流程。'),
        ('咨询冬季取暖补贴政策', '{n}咨询低保家庭冬季取暖补贴的发放标准和时间。'),
        ('咨询居住证办理材料', '{n}咨询办理居住证需要准备的材料。'),
    ],
    'policy.employment': [
        ('咨询创业担保贷款申请条件', '{n}准备开一家糕点房,咨询创业担保贷款的申请条件和额度。'),
        ('高校毕业生咨询就业见习岗位', '{n}是今年毕业的大学生,咨询社区就业见习岗位和补贴。'),
        ('咨询烘焙技能培训报名', '{n}希望参加社区组织的烘焙技能培训,咨询报名时间。'),
        ('咨询灵活就业社保补贴', '{n}从事网约车灵活就业,咨询社保补贴申领条件。'),
    ],
}

# sensor alerts: category -> (sensor prefix, title template, reading function, (urgency, severity, certainty) choices)
SENSOR = {
    'hazard.gas': ('GAS', ['{b}号楼地下室甲烷浓度超限', '{b}号楼厨房燃气探测器报警', '{r}燃气调压箱泄漏报警'],
                   lambda r: 'CH4 %.1f %%LEL' % r.uniform(12, 65),
                   [('URGENCY_IMMEDIATE', 'SEVERITY_SEVERE', 'CERTAINTY_OBSERVED'),
                    ('URGENCY_IMMEDIATE', 'SEVERITY_EXTREME', 'CERTAINTY_OBSERVED'),
                    ('URGENCY_EXPECTED', 'SEVERITY_MODERATE', 'CERTAINTY_LIKELY')]),
    'hazard.fire': ('SMK', ['{b}号楼{u}单元烟感报警', '{b}号楼地下室烟雾报警', '{c}电动车充电棚温度异常'],
                    lambda r: '烟雾 %.2f dB/m, 温度 %d ℃' % (r.uniform(0.15, 0.9), r.randint(28, 75)),
                    [('URGENCY_IMMEDIATE', 'SEVERITY_SEVERE', 'CERTAINTY_OBSERVED'),
                     ('URGENCY_IMMEDIATE', 'SEVERITY_MODERATE', 'CERTAINTY_POSSIBLE'),
                     ('URGENCY_EXPECTED', 'SEVERITY_MINOR', 'CERTAINTY_POSSIBLE')]),
    'hazard.electrical': ('ELC', ['{b}号楼配电箱剩余电流超限', '{b}号楼线缆温度过高', '{c}充电桩漏电报警'],
                          lambda r: '剩余电流 %d mA, 线缆温度 %d ℃' % (r.randint(310, 900), r.randint(45, 95)),
                          [('URGENCY_EXPECTED', 'SEVERITY_MODERATE', 'CERTAINTY_OBSERVED'),
                           ('URGENCY_IMMEDIATE', 'SEVERITY_SEVERE', 'CERTAINTY_OBSERVED')]),
    'hazard.flood': ('WTR', ['{b}号楼地下室水浸报警', '{b}号楼换热站水浸报警'],
                     lambda r: '水浸深度 %d cm' % r.randint(3, 35),
                     [('URGENCY_IMMEDIATE', 'SEVERITY_MODERATE', 'CERTAINTY_OBSERVED'),
                      ('URGENCY_EXPECTED', 'SEVERITY_MINOR', 'CERTAINTY_OBSERVED')]),
    'hazard.building': ('TLT', ['{b}号楼倾斜监测超阈值', '{b}号楼外墙裂缝监测报警'],
                        lambda r: '倾角 %.2f°, 日变化 %.2f°' % (r.uniform(0.6, 1.8), r.uniform(0.05, 0.3)),
                        [('URGENCY_FUTURE', 'SEVERITY_MODERATE', 'CERTAINTY_POSSIBLE'),
                         ('URGENCY_EXPECTED', 'SEVERITY_SEVERE', 'CERTAINTY_LIKELY')]),
}

# per-source mix: (category, weight) and channels (weighted)
MIX = {
    'zongzhi': (112, [('facility.handrail', 6), ('demand.elderly_care', 11), ('demand.repair', 11),
                      ('dispute.neighbour', 7), ('dispute.water_leak', 4), ('dispute.property', 3),
                      ('dispute.family', 3), ('policy.question', 9), ('policy.employment', 4),
                      ('hazard.fire', 8), ('hazard.electrical', 10), ('hazard.building', 5),
                      ('hazard.gas', 3), ('environment.garbage', 7), ('environment.snow', 4),
                      ('demand.heating', 5), ('public_security.patrol', 2)],
                [('CHANNEL_GRID_PATROL', 30), ('CHANNEL_DOOR_VISIT', 30), ('CHANNEL_WALK_IN', 20),
                 ('CHANNEL_APP', 15), ('CHANNEL_REFERRAL', 5)]),
    'gongan': (46, [('public_security.patrol', 18), ('environment.noise', 8), ('dispute.neighbour', 5),
                    ('dispute.family', 4), ('hazard.fire', 5), ('urban.illegal_parking', 5), ('hazard.gas', 1)],
               [('CHANNEL_GRID_PATROL', 70), ('CHANNEL_WALK_IN', 15), ('CHANNEL_REFERRAL', 10), ('CHANNEL_APP', 5)]),
    'chengguan': (52, [('urban.road_damage', 7), ('urban.illegal_parking', 7), ('urban.street_vendor', 6),
                       ('urban.illegal_construction', 4), ('environment.garbage', 9), ('environment.snow', 8),
                       ('facility.streetlight', 7), ('facility.manhole_cover', 4)],
                  [('CHANNEL_GRID_PATROL', 70), ('CHANNEL_APP', 20), ('CHANNEL_REFERRAL', 10)]),
    '12345': (62, [('demand.heating', 12), ('policy.question', 9), ('environment.noise', 6),
                   ('urban.illegal_parking', 4), ('facility.streetlight', 4), ('dispute.property', 5),
                   ('demand.elderly_care', 4), ('environment.snow', 4), ('hazard.gas', 2),
                   ('policy.employment', 3), ('demand.repair', 4), ('urban.road_damage', 2),
                   ('environment.garbage', 3)],
              [('CHANNEL_HOTLINE', 1)]),
    'iot': (40, [('hazard.gas', 12), ('hazard.fire', 12), ('hazard.electrical', 8), ('hazard.flood', 5),
                 ('hazard.building', 3)], None),
    'dangjian': (30, [('demand.elderly_care', 8), ('policy.question', 6), ('facility.handrail', 4),
                      ('dispute.neighbour', 4), ('hazard.electrical', 4), ('demand.repair', 4)],
                 [('CHANNEL_DOOR_VISIT', 60), ('CHANNEL_GRID_PATROL', 25), ('CHANNEL_WALK_IN', 15)]),
}
ID_PREFIX = {'zongzhi': 'zz', 'gongan': 'ga', 'chengguan': 'cg', '12345': 'rx', 'iot': 'iot',
             'dangjian': 'dj', 'weibo': 'wb'}
DISTRICT_WEIGHT = {'650202': 20, '650203': 40, '650204': 28, '650205': 12}

# --------------------------------------------------------------------------- helpers


class Gen:
    def __init__(self):
        self.rnd = random.Random(SEED)
        self.events = []   # dicts: {'ev': envelope dict, 'sort': datetime, 'valid': bool, ...}

    # time
    def when(self, kind='day'):
        r = self.rnd
        day = REF_NOW.astimezone(TZ).date() - dt.timedelta(days=r.randint(1, WINDOW_DAYS))
        if kind == 'office':
            h, m = r.randint(9, 18), r.randint(0, 59)
        elif kind == 'evening':
            h, m = r.choice([19, 20, 21, 22, 23]), r.randint(0, 59)
        elif kind == 'any':
            h, m = r.randint(0, 23), r.randint(0, 59)
        else:
            h, m = r.randint(7, 22), r.randint(0, 59)
        t = dt.datetime(day.year, day.month, day.day, h, m, r.randint(0, 59), tzinfo=TZ)
        if t < REF_NOW - dt.timedelta(days=WINDOW_DAYS):
            t += dt.timedelta(hours=8)   # the first local day starts at 08:00 (00:00 UTC)
        assert REF_NOW - dt.timedelta(days=WINDOW_DAYS) <= t <= REF_NOW - dt.timedelta(hours=1)
        return t

    def pick_subject(self, source, community=None, grid=None):
        r = self.rnd
        if community or grid:
            return r.choice(ids_for(source, community, grid))
        # weight districts, then uniform within
        d = r.choices(list(DISTRICT_WEIGHT), weights=list(DISTRICT_WEIGHT.values()))[0]
        cands = [g for g, code in sorted(XWALK[source].items()) if code.startswith(d)]
        return r.choice(cands)

    def fill(self, tmpl, area_code, vals=None):
        if vals is not None:
            return tmpl.format(**vals), vals
        r = self.rnd
        comm = AREA[community_of(area_code)]['name']
        d = area_code[:6]
        roads = ROADS[d]
        r1, r2 = r.sample(roads, 2)
        b = r.randint(1, 67)
        vals = dict(c=comm, b=b, b2=b + r.randint(2, 6), u=r.randint(1, 6), f=r.randint(2, 7), r=r1, r2=r2,
                    n=person(r), e=elder(r), t=r.randint(11, 16), k=r.randint(3, 9), d=DISTRICT_NAME[d])
        return tmpl.format(**vals), vals

    def location(self, area_code, vals, road=False):
        r = self.rnd
        lat, lon = CENTRE[community_of(area_code)]
        g = int(area_code[12:15]) if len(area_code) == 15 else 0
        lat += (g - 2) * 0.0012 + r.uniform(-0.0009, 0.0009)
        lon += (g % 2) * 0.0015 + r.uniform(-0.0012, 0.0012)
        if road:
            addr = '%s%s与%s交叉口附近' % (DISTRICT_NAME[area_code[:6]], vals['r'], vals['r2'])
        else:
            addr = '%s %d号楼' % (vals['c'], vals['b'])
            if r.random() < 0.6:
                addr += ' %d单元' % vals['u']
        return {'latitude': round(lat, 6), 'longitude': round(lon, 6), 'address': addr}

    def add(self, ev, t, valid=True, note=None, reason=None, raw=None):
        self.events.append({'ev': ev, 't': t, 'valid': valid, 'note': note, 'reason': reason, 'raw': raw})
        return self.events[-1]

    # builders
    def report(self, source, category, t=None, subject=None, community=None, grid=None, channel=None,
               title=None, desc=None, contact=None, loc=True, tmpl=None):
        r = self.rnd
        subject = subject or self.pick_subject(source, community, grid)
        area = XWALK[source][subject]
        if tmpl is None:
            tmpl = r.choice(T[category])
        ttl, vals = self.fill(tmpl[0], area)
        dsc = self.fill(tmpl[1], area, vals)[0] if desc is None else desc  # same values as the title
        if title is not None:
            ttl = title
        if channel is None:
            chans = MIX[source][2]
            channel = r.choices([c for c, _ in chans], weights=[w for _, w in chans])[0]
        if t is None:
            t = self.when('office' if channel in ('CHANNEL_DOOR_VISIT', 'CHANNEL_WALK_IN') else
                          'day')
        rep = {'category': category, 'title': ttl, 'description': dsc, 'channel': channel}
        if contact is None and channel in ('CHANNEL_HOTLINE', 'CHANNEL_WALK_IN', 'CHANNEL_APP') \
                and r.random() < 0.55:
            contact = {'name': person(r) if r.random() < 0.7 else r.choice(SURNAMES) + r.choice(['先生', '女士']),
                       'phone': phone(r)}
        if contact:
            rep['contact'] = contact
        ev = {'id': None, 'source': source, 'type': 'report', 'time': t, 'subject': subject}
        road = '{r}' in tmpl[0] or ('{r}' in tmpl[1] and '{c}' not in tmpl[1])
        if loc is True and (source != '12345' or r.random() < 0.4) and r.random() < 0.75:
            ev['location'] = self.location(area, vals, road)
        elif isinstance(loc, dict):
            ev['location'] = loc
        ev['report'] = rep
        return ev

    def alert(self, category, t=None, subject=None, grid=None, community=None, title=None):
        r = self.rnd
        subject = subject or self.pick_subject('iot', community, grid)
        area = XWALK['iot'][subject]
        prefix, titles, reading, ucs = SENSOR[category]
        tt = r.choice(titles)
        ttl, vals = self.fill(tt, area)
        u, s, c = r.choice(ucs)
        zone = subject.rsplit('-', 1)[1]
        sa = {'category': category, 'sensor_id': '%s-%s-%02d' % (prefix, zone, r.randint(1, 24)),
              'title': title or ttl, 'urgency': u, 'severity': s, 'certainty': c, 'reading': reading(r)}
        ev = {'id': None, 'source': 'iot', 'type': 'sensor_alert', 'time': t or self.when('any'),
              'subject': subject}
        if r.random() < 0.8:
            ev['location'] = self.location(area, vals, road='{r}' in tt)
        ev['sensor_alert'] = sa
        return ev


# --------------------------------------------------------------------------- protobuf


def pb_varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field, wire):
    return pb_varint((field << 3) | wire)


def pb_bytes(field, b):
    if isinstance(b, str):
        b = b.encode('utf-8')
    return pb_key(field, 2) + pb_varint(len(b)) + b


def pb_uint(field, n):
    return pb_key(field, 0) + pb_varint(n) if n else b''


def pb_str(field, s):
    return pb_bytes(field, s) if s else b''


def pb_double(field, x):
    return pb_key(field, 1) + struct.pack('<d', x) if x else b''


ENUMS = {
    'CHANNEL_UNSPECIFIED': 0, 'CHANNEL_GRID_PATROL': 1, 'CHANNEL_DOOR_VISIT': 2, 'CHANNEL_WALK_IN': 3,
    'CHANNEL_HOTLINE': 4, 'CHANNEL_APP': 5, 'CHANNEL_SENSOR': 6, 'CHANNEL_REFERRAL': 7,
    'URGENCY_IMMEDIATE': 1, 'URGENCY_EXPECTED': 2, 'URGENCY_FUTURE': 3, 'URGENCY_PAST': 4,
    'SEVERITY_EXTREME': 1, 'SEVERITY_SEVERE': 2, 'SEVERITY_MODERATE': 3, 'SEVERITY_MINOR': 4,
    'CERTAINTY_OBSERVED': 1, 'CERTAINTY_LIKELY': 2, 'CERTAINTY_POSSIBLE': 3, 'CERTAINTY_UNLIKELY': 4,
}


def enc_report(rep):
    b = pb_str(1, rep.get('category')) + pb_str(2, rep.get('title')) + pb_str(3, rep.get('description'))
    b += pb_uint(4, ENUMS[rep['channel']])
    if 'contact' in rep:
        b += pb_bytes(5, pb_str(1, rep['contact'].get('name')) + pb_str(2, rep['contact'].get('phone')))
    return b


def enc_alert(sa):
    return (pb_str(1, sa['category']) + pb_str(2, sa['sensor_id']) + pb_str(3, sa['title']) +
            pb_uint(4, ENUMS[sa['urgency']]) + pb_uint(5, ENUMS[sa['severity']]) +
            pb_uint(6, ENUMS[sa['certainty']]) + pb_str(7, sa.get('reading')))


def enc_envelope(ev, report_bytes=None, extra=b''):
    """Encodes an event dict; report_bytes replaces the encoded report, extra is appended."""
    b = pb_str(1, ev['id']) + pb_str(2, ev['source']) + pb_str(3, ev['type'])
    secs = int(ev['time'].timestamp())
    b += pb_bytes(4, pb_uint(1, secs))
    b += pb_str(5, ev.get('subject'))
    if 'location' in ev:
        loc = ev['location']
        b += pb_bytes(6, pb_double(1, loc['latitude']) + pb_double(2, loc['longitude']) +
                      pb_str(3, loc.get('address')))
    if 'report' in ev or report_bytes is not None:
        b += pb_bytes(10, report_bytes if report_bytes is not None else enc_report(ev['report']))
    if 'sensor_alert' in ev:
        b += pb_bytes(13, enc_alert(ev['sensor_alert']))
    return b + extra


# --------------------------------------------------------------------------- build


def build():
    g = Gen()
    r = g.rnd
    QY, GMHY, XHY, KL, SL = '650204001001', '650203002001', '650203002002', '650204001002', '650203003001'

    # --- the seed's stories ---------------------------------------------------------------
    t0 = dt.datetime(2026, 11, 9, 10, 20, 0, tzinfo=TZ)
    g.add(g.report('zongzhi', 'facility.handrail', t=t0, subject='ZZ-BJT-ZX-QY-03', channel='CHANNEL_WALK_IN',
                   title='单元门前需安装扶手',
                   desc='居民吴启河到沁苑社区民情诊断室反映:妻子腿脚不便,出门下单元门前台阶困难,希望在单元门前安装扶手。',
                   contact={'name': '吴启河', 'phone': '13899000000'},
                   loc={'latitude': 45.6912, 'longitude': 85.1262, 'address': '沁苑社区 12号楼 3单元'},
                   tmpl=T['facility.handrail'][0]), t0)
    # the household liaison heads then visit door to door and find the same need elsewhere
    for i in range(10):
        t = dt.datetime(2026, 11, 10 + i // 3, 9 + (i * 3) % 9, (i * 17) % 60, 0, tzinfo=TZ)
        src = 'zongzhi' if i % 4 else 'dangjian'
        tm = T['facility.handrail'][i % 3]
        g.add(g.report(src, 'facility.handrail', t=t, community=QY, channel='CHANNEL_DOOR_VISIT', tmpl=tm), t)
    t = dt.datetime(2026, 11, 13, 16, 30, 0, tzinfo=TZ)
    g.add(g.report('zongzhi', 'facility.handrail', t=t, subject='ZZ-BJT-ZX-QY-01', channel='CHANNEL_DOOR_VISIT',
                   title='沁苑社区多个单元老人需要楼梯扶手',
                   desc='联户长入户走访汇总:沁苑社区多个居民楼单元的老年居民反映上下台阶困难,建议社区两委全面摸排,纳入需求清单提交联席会统一安装楼梯扶手。',
                   tmpl=T['facility.handrail'][4]), t)

    # 光明鸿雁社区: 小刘 and the upstairs neighbour, the bathroom leak
    t = dt.datetime(2026, 11, 12, 9, 40, 0, tzinfo=TZ)
    leak_loc = {'latitude': 45.5984, 'longitude': 84.8729, 'address': '光明鸿雁社区 8号楼 2单元 302'}
    g.add(g.report('zongzhi', 'dispute.water_leak', t=t, subject='ZZ-KLMY-TS-GMHY-02', channel='CHANNEL_WALK_IN',
                   title='楼上卫生间跑水泡坏地板 邻里协商赔偿未果',
                   desc='居民小刘到红色家园居民自治接待站求助:楼上邻居家卫生间跑水,自家木地板被泡变形;楼上邻居不认可是其责任,也不认可维修报价,双方发生争执,请求接待站帮助调解。',
                   contact={'name': '刘先生', 'phone': '13899001288'}, loc=leak_loc,
                   tmpl=T['dispute.water_leak'][0]), t)
    t2 = t + dt.timedelta(hours=2, minutes=5)   # the same problem again by phone (最多跑一次)
    g.add(g.report('12345', 'dispute.water_leak', t=t2, subject='RX-光明鸿雁', channel='CHANNEL_HOTLINE',
                   title='卫生间跑水泡坏楼下地板 请求协调',
                   desc='来电人反映楼上住户卫生间跑水导致自家地板受损,双方对维修价格有争议,希望社区协调处理。',
                   contact={'name': '刘先生', 'phone': '13899001288'}, loc=leak_loc,
                   tmpl=T['dispute.water_leak'][0]), t2)

    # 祥和苑社区: 刘京瑞 and the 四社联动 baking training
    t = dt.datetime(2026, 11, 16, 15, 10, 0, tzinfo=TZ)
    g.add(g.report('zongzhi', 'policy.employment', t=t, subject='ZZ-KLMY-TS-XHY-01', channel='CHANNEL_WALK_IN',
                   title='就业困难居民咨询烘焙技能培训',
                   desc='两名就业困难居民咨询四社联动实践服务基地的烘焙技能培训(由社区居民刘京瑞授课)报名时间和创业扶持政策。',
                   tmpl=T['policy.employment'][2]), t)

    # 多网合一: one gas leak in 康乐社区 grid 1 seen by a sensor, the hotline and a grid worker
    kl1 = KL + '001'
    t = dt.datetime(2026, 11, 19, 18, 42, 13, tzinfo=TZ)
    g.add(g.alert('hazard.gas', t=t, grid=kl1, title='5号楼地下室甲烷浓度超限'), t)
    t = dt.datetime(2026, 11, 19, 18, 51, 0, tzinfo=TZ)
    g.add(g.report('12345', 'hazard.gas', t=t, subject='C' + KL, channel='CHANNEL_HOTLINE',
                   title='5号楼楼道燃气味很重', desc='来电人反映康乐社区5号楼一单元楼道燃气味很重,担心泄漏。',
                   tmpl=T['hazard.gas'][0]), t)
    t = dt.datetime(2026, 11, 19, 19, 3, 0, tzinfo=TZ)
    g.add(g.report('zongzhi', 'hazard.gas', t=t, grid=kl1, channel='CHANNEL_GRID_PATROL',
                   title='5号楼燃气泄漏 已疏散一单元住户',
                   desc='网格员到场确认5号楼地下室燃气泄漏,已协助疏散一单元住户、关闭总阀,等待燃气公司抢修。',
                   tmpl=T['hazard.gas'][0]), t)
    # and a smoke alarm in 胜利社区 grid 3, seen by a sensor and a police patrol
    sl3 = SL + '003'
    t = dt.datetime(2026, 11, 22, 2, 17, 40, tzinfo=TZ)
    g.add(g.alert('hazard.fire', t=t, grid=sl3, title='14号楼地下室烟雾报警'), t)
    t = dt.datetime(2026, 11, 22, 2, 31, 0, tzinfo=TZ)
    g.add(g.report('gongan', 'hazard.fire', t=t, grid=sl3, channel='CHANNEL_GRID_PATROL',
                   title='14号楼地下室冒烟 纸箱起火已扑灭',
                   desc='夜间巡逻接警到场,14号楼地下室堆放的纸箱阴燃冒烟,已用灭火器扑灭,无人员受伤,建议清理地下室杂物。',
                   tmpl=T['hazard.fire'][3]), t)

    # --- the bulk -------------------------------------------------------------------------
    seeded = {}
    for e in g.events:
        seeded[e['ev']['source']] = seeded.get(e['ev']['source'], 0) + 1
    for source, (total, cats, _) in MIX.items():
        n = total - seeded.get(source, 0)
        names = [c for c, _ in cats]
        weights = [w for _, w in cats]
        for _ in range(n):
            cat = r.choices(names, weights=weights)[0]
            if source == 'iot':
                ev = g.alert(cat)
            else:
                ev = g.report(source, cat)
            g.add(ev, ev['time'])

    # --- invalid on purpose -----------------------------------------------------------
    def bad(reason, note, ev=None, raw=None, t=None):
        t = t or (ev['time'] if ev and isinstance(ev.get('time'), dt.datetime) else g.when())
        g.add(ev, t, valid=False, note=note, reason=reason, raw=raw)

    def some(source='zongzhi', cat='demand.repair', **kw):
        return g.report(source, cat, **kw) if source != 'iot' else g.alert(cat, **kw)

    ev = some(community=QY); ev['subject'] = 'ZZ-BJT-ZX-QY-09'
    bad('REASON_UNKNOWN_GRID', 'zongzhi subject ZZ-BJT-ZX-QY-09: 沁苑社区 has grids 01-04 only', ev)
    ev = some('gongan', 'public_security.patrol', grid=XWALK['chengguan']['CG-BJT-0012'])
    ev['subject'] = 'CG-BJT-0012'
    bad('REASON_UNKNOWN_GRID', "gongan subject CG-BJT-0012 is chengguan's id, not in gongan's crosswalk", ev)
    ev = some('12345', 'demand.heating', channel='CHANNEL_HOTLINE'); ev['subject'] = 'RX-幸福'
    bad('REASON_UNKNOWN_GRID', '12345 subject RX-幸福: no such community in the crosswalk', ev)
    ev = some('iot', 'hazard.gas'); ev['subject'] = 'IOT-ZONE-999'
    bad('REASON_UNKNOWN_GRID', 'iot subject IOT-ZONE-999: unknown sensor zone', ev)
    ev = some('12345', 'demand.repair', channel='CHANNEL_HOTLINE', community=QY); ev['subject'] = '650204001001'
    bad('REASON_UNKNOWN_GRID', '12345 subject is a bare unified code, not a 12345 id (C650204001001 would be)', ev)

    ev = some('zongzhi', 'dispute.neighbour'); ev['report']['category'] = 'pet.dog_barking'
    bad('REASON_UNKNOWN_CATEGORY', 'category pet.dog_barking is not in the catalogue', ev)
    ev = some('iot', 'hazard.gas'); ev['sensor_alert']['category'] = 'hazard.radiation'
    bad('REASON_UNKNOWN_CATEGORY', 'sensor alert category hazard.radiation is not in the catalogue', ev)
    ev = some('chengguan', 'urban.road_damage'); ev['report']['category'] = 'urban.graffiti'
    bad('REASON_UNKNOWN_CATEGORY', 'category urban.graffiti is not in the catalogue', ev)

    ev = some('zongzhi', 'demand.elderly_care'); ev['time'] = dt.datetime(2027, 1, 1, 9, 0, 0, tzinfo=TZ)
    bad('REASON_INVALID_TIME', 'time 2027-01-01: in the future', ev, t=g.when())
    ev = some('gongan', 'environment.noise'); ev['time'] = dt.datetime(2026, 10, 1, 21, 30, 0, tzinfo=TZ)
    bad('REASON_INVALID_TIME', 'time 2026-10-01: older than 30 days', ev, t=g.when())
    ev = some('iot', 'hazard.fire'); ev['time'] = REF_NOW.astimezone(TZ) + dt.timedelta(days=2)
    bad('REASON_INVALID_TIME', 'sensor alert time two days after the reference date (2026-11-28)', ev, t=g.when())

    ev = some('zongzhi', 'hazard.fire'); ev['location'] = {'latitude': 123.0, 'longitude': 84.87, 'address': '迎宾社区 3号楼'}
    bad('REASON_INVALID_LOCATION', 'latitude 123', ev)
    ev = some('chengguan', 'facility.manhole_cover'); ev['location'] = {'latitude': 0.0, 'longitude': 0.0}
    bad('REASON_INVALID_LOCATION', 'location (0, 0) used as a placeholder', ev)
    ev = some('dangjian', 'demand.elderly_care'); ev['location'] = {'latitude': 45.59, 'longitude': 284.87}
    bad('REASON_INVALID_LOCATION', 'longitude 284.87', ev)

    ev = some('zongzhi', 'demand.repair'); ev['report']['title'] = ''
    bad('REASON_MISSING_FIELD', 'empty title', ev)
    ev = some('iot', 'hazard.electrical'); ev['sensor_alert']['sensor_id'] = ''
    bad('REASON_MISSING_FIELD', 'sensor alert without sensor_id', ev)
    ev = some('chengguan', 'environment.garbage'); ev['subject'] = ''
    bad('REASON_MISSING_FIELD', 'report without subject', ev)
    ev = some('dangjian', 'policy.question'); del ev['report']['channel']
    bad('REASON_MISSING_FIELD', 'report without channel (CHANNEL_UNSPECIFIED)', ev)

    ev = some('zongzhi', 'dispute.property'); ev['report']['channel'] = 99
    bad('REASON_UNKNOWN_ENUM', 'channel 99 (a number no Channel value has)', ev)
    ev = some('iot', 'hazard.flood'); ev['sensor_alert']['severity'] = 9
    bad('REASON_UNKNOWN_ENUM', 'severity 9', ev)

    ev = some('zongzhi', 'demand.repair'); ev['type'] = 'status'
    bad('REASON_TYPE_MISMATCH', 'type "status" with a report payload', ev)
    ev = some('gongan', 'public_security.patrol'); ev['type'] = 'sensor_alert'
    bad('REASON_TYPE_MISMATCH', 'type "sensor_alert" with a report payload', ev)

    ev = some('zongzhi', 'environment.noise'); ev['source'] = 'weibo'
    bad('REASON_UNAUTHORISED_SOURCE', 'source "weibo" is not a registered source system', ev)

    ev = some('zongzhi', 'hazard.building')
    ev['report']['title'] = ('外墙保温层脱落' * 30)[:150]
    bad('REASON_INVALID_FIELD', 'title of 150 characters (limit 128)', ev)
    ev = some('12345', 'demand.heating', channel='CHANNEL_HOTLINE')
    ev['report']['contact'] = {'name': '赵女士', 'phone': 'call me after 6pm'}
    bad('REASON_INVALID_FIELD', 'contact phone with letters', ev)

    ev = some('dangjian', 'dispute.neighbour')
    ev['report']['description'] = ev['report']['description'][:12] + '\u0000' + ev['report']['description'][12:]
    # As raw bytes: protobuf-c packs strings up to their first NUL, so onegridctl refuses
    # a JSON string containing one instead of sending it truncated.
    bad('REASON_EMBEDDED_NUL', 'description contains U+0000', ev, raw=('plain', None))

    # byte-level faults
    raw = bytes([0x00]) + bytes(r.randrange(256) for _ in range(47))
    bad('REASON_UNDECODABLE', 'random bytes starting with tag 0 (not protobuf)', raw=raw)
    ev = some('zongzhi', 'demand.elderly_care')
    bad('REASON_UNDECODABLE', 'Envelope cut off inside the report (length runs past the end)', ev,
        raw=('truncate', None))
    ev = some('chengguan', 'urban.street_vendor')
    bad('REASON_UNKNOWN_FIELD', 'valid Envelope plus field 99 (varint)', ev,
        raw=('extra', pb_uint(99, 1)))
    ev = some('zongzhi', 'demand.repair')
    bad('REASON_UNKNOWN_FIELD', 'NewReport carrying an unknown field 9 (string)', ev,
        raw=('report_extra', pb_str(9, '附加字段')))
    ev = some('gongan', 'dispute.neighbour')
    bad('REASON_INVALID_UTF8', 'title bytes end with 0xC3 0x28 (invalid UTF-8)', ev,
        raw=('bad_utf8', None))
    ev = some('zongzhi', 'hazard.gas')
    bad('REASON_MULTIPLE_PAYLOADS', 'Envelope with both report (10) and sensor_alert (13)', ev,
        raw=('two_payloads', None))
    return g


def assign_ids(g):
    """Orders everything by time and numbers the events per source and day."""
    g.events.sort(key=lambda e: e['t'])
    seq = {}
    for e in g.events:
        ev = e['ev']
        if ev is None:
            continue
        day = ev['time'].astimezone(TZ).strftime('%Y%m%d')
        key = (ev['source'], day)
        seq[key] = seq.get(key, 0) + 1
        ev['id'] = '%s-%s-%04d' % (ID_PREFIX[ev['source']], day, seq[key])


def to_json(ev):
    out = {}
    for k, v in ev.items():
        out[k] = v.isoformat() if isinstance(v, dt.datetime) else v
    return json.dumps(out, ensure_ascii=False, separators=(',', ':'))


def raw_line(e):
    kind = e['raw']
    if isinstance(kind, bytes):
        b = kind
    else:
        what, arg = kind
        ev = e['ev']
        if what == 'plain':
            b = enc_envelope(ev)
        elif what == 'truncate':
            b = enc_envelope(ev)
            b = b[:len(b) - 25]
        elif what == 'extra':
            b = enc_envelope(ev, extra=arg)
        elif what == 'report_extra':
            b = enc_envelope(ev, report_bytes=enc_report(ev['report']) + arg)
        elif what == 'bad_utf8':
            rep = ev['report']
            rb = (pb_str(1, rep['category']) + pb_bytes(2, '邻里纠纷'.encode() + b'\xc3\x28') +
                  pb_str(3, rep['description']) + pb_uint(4, ENUMS[rep['channel']]))
            b = enc_envelope(ev, report_bytes=rb)
        elif what == 'two_payloads':
            sa = {'category': 'hazard.gas', 'sensor_id': 'GAS-017-03', 'title': '燃气浓度超限',
                  'urgency': 'URGENCY_IMMEDIATE', 'severity': 'SEVERITY_SEVERE',
                  'certainty': 'CERTAINTY_OBSERVED', 'reading': 'CH4 30.0 %LEL'}
            b = enc_envelope(dict(ev, sensor_alert=sa))
        else:
            raise AssertionError(what)
    return json.dumps({'raw_base64': base64.b64encode(b).decode()}, separators=(',', ':'))


def render(g):
    """Returns (lines, table rows, counts)."""
    r = random.Random(SEED + 1)
    lines, meta = [], []
    for e in g.events:
        if e['raw'] is not None:
            lines.append(raw_line(e))
        else:
            lines.append(to_json(e['ev']))
        meta.append(e)
    # 5 exact duplicates of earlier valid events, at least 100 lines after the original
    valid_idx = [i for i, e in enumerate(meta) if e['valid']]
    picks = []
    for src in ['zongzhi', '12345', 'iot', 'chengguan', 'gongan']:
        cands = [i for i in valid_idx if meta[i]['ev']['source'] == src and i < len(meta) - 150]
        picks.append(r.choice(cands))
    for i in sorted(picks, reverse=True):
        pos = r.randint(i + 100, len(lines))
        lines.insert(pos, lines[i])
        meta.insert(pos, {'dup_of': i, 'ev': meta[i]['ev'], 'valid': False, 'reason': None,
                          'note': 'duplicate'})
    # line numbers of the originals may have shifted: recompute
    return lines, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--expected', metavar='FILE', help='also write the expected publish counts to FILE')
    ap.add_argument('--table', action='store_true', help='print the markdown table of invalid events instead')
    args = ap.parse_args()

    g = build()
    assign_ids(g)
    lines, meta = render(g)

    # self-checks
    seen = {}
    for n, (line, m) in enumerate(zip(lines, meta), 1):
        json.loads(line)
        if m.get('note') == 'duplicate':
            continue
        ev = m['ev']
        if ev is not None:
            k = (ev['source'], ev['id'])
            assert k not in seen, k
            seen[k] = n
        if m['valid']:
            assert ev['source'] in SOURCES and ev['subject'] in XWALK[ev['source']], ev
            p = ev.get('report') or ev.get('sensor_alert')
            assert p['category'] in CATEGORIES, p
            assert 1 <= len(p['title']) <= 128 and len(p.get('description', '')) <= 4096
            assert REF_NOW - dt.timedelta(days=25) <= ev['time'] <= REF_NOW - dt.timedelta(hours=1)
            if 'location' in ev:
                assert len(ev['location']['address']) <= 256
    stored = sum(1 for m in meta if m['valid'])
    dups = sum(1 for m in meta if m.get('note') == 'duplicate')
    rejected = [m['reason'] for m in meta if m.get('reason')]
    assert stored + dups + len(rejected) == len(lines)

    if args.table:
        print('| line | source | id | what is wrong | expected reason |')
        print('|---:|---|---|---|---|')
        for n, m in enumerate(meta, 1):
            if m.get('reason'):
                ev = m['ev']
                raw = ' (raw_base64)' if m['raw'] is not None else ''
                src = ev['source'] if ev else '-'
                eid = ev['id'] if ev else '-'
                print('| %d | %s | %s | %s%s | %s |' % (n, src, eid, m['note'], raw, m['reason']))
        print()
        print('Duplicates (answered `duplicate`, nothing stored):')
        print()
        print('| line | duplicate of line | source | id |')
        print('|---:|---:|---|---|')
        first = {}
        for n, m in enumerate(meta, 1):
            if m.get('valid'):
                first[(m['ev']['source'], m['ev']['id'])] = n
        for n, m in enumerate(meta, 1):
            if m.get('note') == 'duplicate':
                ev = m['ev']
                print('| %d | %d | %s | %s |' % (n, first[(ev['source'], ev['id'])], ev['source'], ev['id']))
        return

    if args.expected:
        counts = {}
        for x in rejected:
            counts[x] = counts.get(x, 0) + 1
        with open(args.expected, 'w', encoding='utf-8') as f:
            f.write('stored %d\nduplicate %d\nrejected %d\n' % (stored, dups, len(rejected)))
            for k in sorted(counts):
                f.write('%s %d\n' % (k, counts[k]))
    sys.stdout.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
